package cli

// Every dot at once: --all (with --namespace and --label) on commit, push,
// pull, reset and tag. dm lists the dots, chooses them with a
// dotmesh.Selector and makes one API call per dot, as it would for each
// by hand: each dot's call is checked against the caller's role on that
// dot, and a failure in one dot does not stop the others.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// selection is the --all, --namespace and --label flags of a verb.
type selection struct {
	all       bool
	namespace string
	labels    []string
}

// allHelp is the paragraph the verbs' --help add about --all.
const allHelp = `

With --all, act on every dot of the remote the caller may read, or those
--namespace NS and --label KEY=VALUE (repeatable, all must hold; also
KEY!=VALUE, KEY to have the label, !KEY not to) choose; ` + "`dm dot label`" + ` sets
labels. Dots are done one after another, one line each (--json: an
array). A failure in one dot does not stop the others; dm then exits with
the status of the first failure's kind (see dm --help).`

func selectionFlags(c *cobra.Command, sel *selection) {
	f := c.Flags()
	f.BoolVar(&sel.all, "all", false, "act on every dot (or those --namespace and --label choose)")
	f.StringVar(&sel.namespace, "namespace", "", "with --all: only the dots of namespace `NS`")
	f.StringArrayVar(&sel.labels, "label", nil, "with --all: only dots labelled `KEY=VALUE` (KEY!=VALUE, KEY, !KEY); repeatable, all must hold")
}

// check refuses selectors without --all, and --all with a named dot.
func (sel *selection) check(dotFlag string, dotArgs int) (dotmesh.Selector, error) {
	if !sel.all {
		if sel.namespace != "" || len(sel.labels) > 0 {
			return dotmesh.Selector{}, kinded(errUsage, errors.New("--namespace and --label choose the dots of --all; add --all (or name one dot)"))
		}
		return dotmesh.Selector{}, nil
	}
	if dotFlag != "" || dotArgs > 0 {
		return dotmesh.Selector{}, kinded(errUsage, errors.New("--all acts on many dots: name no dot (choose them with --namespace and --label)"))
	}
	return dotmesh.ParseSelector(sel.namespace, sel.labels)
}

// Statuses of one dot's (or node's) outcome.
const (
	statusDone        = "done"
	statusSkipped     = "skipped"
	statusFailed      = "failed"
	statusUnreachable = "unreachable"
)

// itemResult is one dot's or one node's outcome in a report.
type itemResult struct {
	Dot     string `json:"dot,omitempty"`
	Node    string `json:"node,omitempty"`
	Address string `json:"address,omitempty"`
	Status  string `json:"status"`
	Detail  string `json:"detail,omitempty"` // what was done or skipped, in words
	Commit  string `json:"commit,omitempty"`
	Result  any    `json:"result,omitempty"`
	Error   string `json:"error,omitempty"`
	Kind    string `json:"kind,omitempty"` // as dm's --json errors have it
	err     error
}

func (r *itemResult) fail(err error) {
	r.Status, r.err = statusFailed, err
	r.Error = oneLine(hinted(err))
	r.Kind, _ = errorKind(err)
	if r.Node != "" && r.Kind == "unavailable" {
		r.Status = statusUnreachable
	}
}

func (r *itemResult) name() string {
	if r.Node != "" {
		return "node " + r.Node
	}
	return r.Dot
}

// report prints results as they come and, at the end, the JSON array and
// the error that sets the exit status.
type report struct {
	a       *app
	noun    string // "dot", "node"
	results []itemResult
}

func (rp *report) add(r itemResult) {
	rp.results = append(rp.results, r)
	a := rp.a
	switch {
	case a.jsonOut:
	case a.scripting:
		what := r.Detail
		if r.err != nil {
			what = r.Error
		}
		fmt.Fprintf(a.out(), "%s\t%s\t%s\n", strings.TrimPrefix(r.name(), "node "), r.Status, what)
	case r.err != nil:
		fmt.Fprintf(a.out(), "%s: %s: %s\n", r.name(), r.Status, r.Error)
	case r.Status == statusSkipped:
		fmt.Fprintf(a.out(), "%s: skipped: %s\n", r.name(), printable(r.Detail))
	default:
		fmt.Fprintf(a.out(), "%s: %s\n", r.name(), printable(r.Detail))
	}
}

// someFailedError ends a report with failures: its kind (and so dm's exit
// status) is the first failure's.
type someFailedError struct {
	failed, total int
	noun          string
	first         *itemResult
}

func (e *someFailedError) Error() string {
	return fmt.Sprintf("%d of %d %s failed (the first, %s: %s)", e.failed, e.total, plural(e.total, e.noun, e.noun+"s"), e.first.name(), e.first.Error)
}

func (e *someFailedError) Unwrap() error { return e.first.err }

func (rp *report) finish() error {
	a := rp.a
	var first *itemResult
	counts := map[string]int{}
	for i := range rp.results {
		r := &rp.results[i]
		counts[r.Status]++
		if r.err != nil && first == nil {
			first = r
		}
	}
	if a.jsonOut {
		if err := writeJSON(a.out(), nonNilItems(rp.results)); err != nil {
			return err
		}
	} else {
		var parts []string
		for _, st := range []string{statusDone, statusSkipped, statusFailed, statusUnreachable} {
			if counts[st] > 0 || st == statusDone || st == statusFailed && rp.noun == "dot" {
				parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
			}
		}
		a.info("%d %s: %s.", len(rp.results), plural(len(rp.results), rp.noun, rp.noun+"s"), strings.Join(parts, ", "))
	}
	if first == nil {
		return nil
	}
	return &someFailedError{failed: counts[statusFailed] + counts[statusUnreachable], total: len(rp.results), noun: rp.noun, first: first}
}

func nonNilItems(rs []itemResult) []itemResult {
	if rs == nil {
		return []itemResult{}
	}
	return rs
}

// selectDots returns the dots of the remote sel chooses, by namespace and
// name, and their statuses; none chosen is ErrNotFound.
func selectDots(ctx context.Context, s *session, sel dotmesh.Selector) ([]dotmesh.DotStatus, error) {
	all, err := s.c.ListDots(ctx)
	if err != nil {
		return nil, s.wrap(err)
	}
	var out []dotmesh.DotStatus
	for _, st := range all {
		if st.Dot != nil && sel.Matches(st.Dot) {
			out = append(out, st)
		}
	}
	if len(out) == 0 {
		return nil, kinded(dotmesh.ErrNotFound, fmt.Errorf("no dot on remote %s matches the selection (%s); `dm list --show-labels` shows the dots and their labels", s.remoteName, sel))
	}
	return out, nil
}

// connectSelect connects to the remote and chooses its dots.
func (a *app) connectSelect(ctx context.Context, sel dotmesh.Selector) (*session, []dotmesh.DotStatus, error) {
	s, err := a.connect()
	if err != nil {
		return nil, nil, err
	}
	dots, err := selectDots(ctx, s, sel)
	return s, dots, err
}

// forEachDot runs do on each chosen dot, reporting each outcome.
func (a *app) forEachDot(s *session, dots []dotmesh.DotStatus, do func(name dotmesh.DotName, r *itemResult)) error {
	rp := &report{a: a, noun: "dot"}
	for _, st := range dots {
		name := st.Dot.DotName()
		r := itemResult{Dot: name.String(), Status: statusDone}
		do(name, &r)
		if r.err != nil {
			r.fail(r.err)
		}
		rp.add(r)
	}
	return rp.finish()
}

// commitAll is `dm commit --all`: an unchanged dot is skipped, not failed.
func (a *app) commitAll(cmd *cobra.Command, sel dotmesh.Selector, req api.CommitRequest) error {
	// Several requests and a report of each: a signal cancels, never ends,
	// them (commit catches it late otherwise, catchLate).
	if a.catchInterrupts != nil {
		a.catchInterrupts()
	}
	s, dots, err := a.connectSelect(cmd.Context(), sel)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	return a.forEachDot(s, dots, func(name dotmesh.DotName, r *itemResult) {
		cm, err := s.c.CommitWith(ctx, name, req)
		var nt *dotmesh.NothingToCommitError
		switch {
		case errors.As(err, &nt):
			r.Status, r.Detail = statusSkipped, "nothing to commit"
		case err != nil:
			r.err = s.wrap(err)
		default:
			r.Commit, r.Detail = string(cm.ID), fmt.Sprintf("committed %s on %s", shortID(string(cm.ID)), cm.Branch)
		}
	})
}

// tagAll is `dm tag --all NAME [REF]`: the same tag on every chosen dot.
func (a *app) tagAll(cmd *cobra.Command, sel dotmesh.Selector, req api.TagRequest) error {
	s, dots, err := a.connectSelect(cmd.Context(), sel)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	return a.forEachDot(s, dots, func(name dotmesh.DotName, r *itemResult) {
		t, err := s.c.CreateTag(ctx, name, req)
		if err != nil {
			r.err = s.wrap(err)
			return
		}
		r.Commit, r.Detail = string(t.Commit), fmt.Sprintf("tagged %s as %s", shortID(string(t.Commit)), t.Name)
	})
}

// resetAll is `dm reset --all REF`, a deployment's restore: it first
// checks that REF names a commit in every chosen dot (and, without
// --hard, that none has uncommitted changes), and refuses before
// changing anything, naming the dots that fail the check.
func (a *app) resetAll(cmd *cobra.Command, sel dotmesh.Selector, req api.ResetRequest) error {
	s, dots, err := a.connectSelect(cmd.Context(), sel)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var lacking, elsewhere, dirty []string
	for _, st := range dots {
		name := st.Dot.DotName()
		switch in, err := refInCurrentBranch(ctx, s, name, req.Ref); {
		case errors.Is(err, dotmesh.ErrNotFound):
			lacking = append(lacking, name.String())
		case err != nil:
			return fmt.Errorf("checking %s in dot %s before resetting any: %w", req.Ref, name, s.wrap(err))
		case !in:
			elsewhere = append(elsewhere, name.String())
		}
		if !req.Hard && st.Usage.Dirty {
			dirty = append(dirty, name.String())
		}
	}
	if len(lacking) > 0 {
		return kinded(dotmesh.ErrNotFound, fmt.Errorf("no dot was reset: %s %s %s no %s (of %d chosen)", plural(len(lacking), "dot", "dots"), strings.Join(lacking, ", "), plural(len(lacking), "has", "have"), req.Ref, len(dots)))
	}
	if len(elsewhere) > 0 {
		return kinded(dotmesh.ErrNotFound, fmt.Errorf("no dot was reset: %s is not in the history of the current branch of %s (of %d chosen); check out the branch that has it there", req.Ref, strings.Join(elsewhere, ", "), len(dots)))
	}
	if len(dirty) > 0 {
		return kinded(dotmesh.ErrDirty, fmt.Errorf("no dot was reset: %s %s uncommitted changes; commit them, or add --hard to discard them", strings.Join(dirty, ", "), plural(len(dirty), "has", "have")))
	}
	return a.forEachDot(s, dots, func(name dotmesh.DotName, r *itemResult) {
		rep, err := s.c.ResetReport(ctx, name, req)
		if err != nil {
			r.err = s.wrap(err)
			return
		}
		r.Commit, r.Detail = string(rep.ID), fmt.Sprintf("HEAD is now at %s %s", shortID(string(rep.ID)), firstLine(rep.Message))
	})
}

// refInCurrentBranch reports whether ref names a commit in the history of
// the dot's current branch, as a reset needs (ErrNotFound: it names none).
// The history is read by ids and parents only on the node, one request.
func refInCurrentBranch(ctx context.Context, s *session, name dotmesh.DotName, ref string) (bool, error) {
	c, err := s.c.ResolveRef(ctx, name, "", ref)
	if err != nil {
		return false, err
	}
	page, err := s.c.History(ctx, name, "", "", 0, 0)
	if err != nil {
		return false, err
	}
	for _, h := range page.Commits {
		if h.ID == c.ID {
			return true, nil
		}
	}
	return false, nil
}

// transferAll is `dm push --all REMOTE` and `dm pull --all REMOTE`: each
// dot with its upstream on REMOTE (else the same name there).
func (a *app) transferAll(cmd *cobra.Command, op string, sel dotmesh.Selector, args []string, f transferFlags) error {
	if len(args) != 1 || f.remoteName != "" {
		return kinded(errUsage, fmt.Errorf("usage: dm %s --all REMOTE (each dot's current branch, to its own name there; no DOT, BRANCH or --remote-name)", op))
	}
	s, err := a.connect()
	if err != nil {
		return err
	}
	peerName := args[0]
	base, peer, _, err := a.transferTo(s, op, peerName, f)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	dots, err := selectDots(ctx, s, sel)
	if err != nil {
		return err
	}
	if peer.Bucket != nil {
		if base.Remote.Bucket, err = a.transferBucket(peerName, peer.Bucket); err != nil {
			return err
		}
	}
	return a.forEachDot(s, dots, func(name dotmesh.DotName, r *itemResult) {
		req := base
		req.Dot = name.String()
		res, err := s.c.Transfer(ctx, req, nil)
		if err != nil {
			r.err = transferError(s, err, peerName, peer)
			return
		}
		r.Commit, r.Result = string(res.Head), res
		switch {
		case res.UpToDate && res.Behind > 0:
			r.Status, r.Detail = statusSkipped, fmt.Sprintf("the receiving side of @%s is %d commit(s) ahead", res.Branch, res.Behind)
		case res.UpToDate:
			r.Status, r.Detail = statusSkipped, fmt.Sprintf("@%s is up to date (%s)", res.Branch, shortID(string(res.Head)))
		default:
			r.Detail = fmt.Sprintf("%sed @%s to %s: %d commit(s), %s in %s", strings.ToLower(pastTense(op)), res.Branch, shortID(string(res.Head)), res.Commits, HumanSize(res.Bytes), res.Duration.Round(time.Millisecond))
		}
		if len(res.SkippedTags) > 0 {
			r.Detail += "; the receiving side kept its own " + plural(len(res.SkippedTags), "tag", "tags") + " " + strings.Join(res.SkippedTags, ", ")
		}
	})
}

// transferTo is the request for a transfer of op with the remote
// peerName (the dots still to fill in), that remote, and the user whose
// namespace its dot names default to.
func (a *app) transferTo(s *session, op, peerName string, f transferFlags) (api.TransferRequest, *Remote, string, error) {
	peer, ok := s.cfg.Remotes[peerName]
	if !ok {
		return api.TransferRequest{}, nil, "", kinded(dotmesh.ErrNotFound, fmt.Errorf("no remote named %s; `dm remote add %s USER@HOST` adds it, `dm remote` lists them", peerName, peerName))
	}
	if peerName == s.remoteName {
		return api.TransferRequest{}, nil, "", kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("remote %s is the node dm talks to; name another remote (or choose the local node with --remote NAME)", peerName))
	}
	req := api.TransferRequest{Op: op, Stash: f.stash, Neutral: f.neutral,
		Remote: api.TransferRemote{Name: peerName, URL: peer.URL(), User: peer.User, APIKey: peer.APIKey, CACert: peer.CACert}}
	a.timeouts.apply(&req.Remote)
	peerUser := peer.User
	if peer.Bucket != nil {
		// A bucket has no users: names stay as they are, as admin to admin.
		peerUser = dotmesh.AdminUser
		req.Remote = api.TransferRemote{Name: peerName}
	}
	return req, peer, peerUser, nil
}

// transferError words a failed transfer: a peer's refusal names the peer.
func transferError(s *session, err error, peerName string, peer *Remote) error {
	var re *api.RemoteError
	if errors.As(err, &re) && re.Peer && peer.Bucket != nil {
		return bucketError(err, peerName, peer.Bucket)
	}
	if errors.As(err, &re) && re.Peer {
		// The peer answered the node dm talks to: name the peer.
		if errors.Is(err, dotmesh.ErrUnauthorized) {
			return refusedKey(err, peerName, peer.Address)
		}
		return fmt.Errorf("remote %s: %w", peerName, err)
	}
	return s.wrap(err)
}
