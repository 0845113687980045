package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Hooks are what a node runs around a commit of a dot, as Velero runs
// pre and post hooks around a backup: a pre-commit hook (a command or an
// HTTP call) that may refuse the commit, a quiesce hook that brings an
// application to a clean point just across the snapshot (built-ins:
// postgresql, mysql, fsfreeze), and a post-commit hook told the outcome.
// The engine knows their shapes and order; a HookRunner (Options.Hooks)
// does the running, so the library holds no exec, SQL or HTTP.
//
// A dot's hooks are kept under their own registry key (keys.go), not in
// the Dot record: a hook's URL may carry a password, and readers of a dot
// read its record. Hooks stay on this node (a cluster's nodes share
// them); transfers do not carry them.

// Hook stages: when a hook runs.
const (
	HookPreCommit  = "pre-commit"  // before the commit; failing refuses it
	HookQuiesce    = "quiesce"     // across the snapshot; failing refuses it
	HookPostCommit = "post-commit" // after the commit, whatever its outcome
)

// Hook kinds: what runs.
const (
	HookCommand    = "command"    // argv run on the node (pre-, post-commit)
	HookHTTP       = "http"       // a POST to a URL (pre-, post-commit)
	HookPostgreSQL = "postgresql" // CHECKPOINT before the snapshot (quiesce)
	HookMySQL      = "mysql"      // FLUSH TABLES WITH READ LOCK across it (quiesce)
	HookFSFreeze   = "fsfreeze"   // fsfreeze -f / -u of a subdot's file system (quiesce)
)

// Hook timeouts.
const (
	DefaultHookTimeout = 30 * time.Second
	MaxHookTimeout     = time.Hour
)

// Limits of a hook's command.
const (
	maxHookArgs      = 256
	maxHookArgsBytes = 16 << 10
	maxHookURL       = 2048
)

// Hook is one hook of a dot.
type Hook struct {
	Stage   string        `json:"stage"`
	Kind    string        `json:"kind"`
	Command []string      `json:"command,omitempty"` // HookCommand: argv
	URL     string        `json:"url,omitempty"`     // HookHTTP, HookPostgreSQL, HookMySQL
	Subdot  string        `json:"subdot,omitempty"`  // HookFSFreeze
	Timeout time.Duration `json:"timeout"`           // 0: DefaultHookTimeout
}

// TimeoutOrDefault is the hook's timeout.
func (h Hook) TimeoutOrDefault() time.Duration {
	if h.Timeout == 0 {
		return DefaultHookTimeout
	}
	return h.Timeout
}

// Name says what the hook runs, for the consistency record and logs:
// its kind, a command's program.
func (h Hook) Name() string {
	if h.Kind == HookCommand && len(h.Command) > 0 {
		return h.Command[0]
	}
	if h.Kind == HookFSFreeze {
		return h.Kind + ":" + h.Subdot
	}
	return h.Kind
}

// Redacted is h with any password in its URL replaced, for logs and
// messages. URLs here include DSNs url.Parse refuses
// (mysql://user:pw@unix(/sock)/db), so the user info is found by hand.
func (h Hook) Redacted() Hook {
	h.URL = redactURL(h.URL)
	return h
}

func redactURL(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return s
	}
	user, _, hasPw := strings.Cut(rest[:at], ":")
	if !hasPw {
		return s
	}
	return s[:i+3] + user + ":xxxxx" + rest[at:]
}

// kindsOf lists the kinds each stage takes.
var kindsOf = map[string][]string{
	HookPreCommit:  {HookCommand, HookHTTP},
	HookPostCommit: {HookCommand, HookHTTP},
	HookQuiesce:    {HookPostgreSQL, HookMySQL, HookFSFreeze},
}

// HookStages lists the stages in the order they run.
var HookStages = []string{HookPreCommit, HookQuiesce, HookPostCommit}

// Validate checks a hook: a known stage and a kind it takes, with
// exactly the fields that kind needs.
func (h Hook) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s hook: %s", ErrInvalidArgument, truncate(h.Stage), fmt.Sprintf(format, args...))
	}
	kinds, ok := kindsOf[h.Stage]
	if !ok {
		return fmt.Errorf("%w: hook stage %q is not one of %s", ErrInvalidArgument, truncate(h.Stage), strings.Join(HookStages, ", "))
	}
	if !slices.Contains(kinds, h.Kind) {
		return bad("kind %q is not one of %s", truncate(h.Kind), strings.Join(kinds, ", "))
	}
	if h.Timeout < 0 || h.Timeout > MaxHookTimeout {
		return bad("timeout %s is not between 0 (the default, %s) and %s", h.Timeout, DefaultHookTimeout, MaxHookTimeout)
	}
	if h.Kind != HookCommand && len(h.Command) > 0 {
		return bad("a %s hook runs no command", h.Kind)
	}
	if h.Kind != HookFSFreeze && h.Subdot != "" {
		return bad("only an fsfreeze hook names a subdot")
	}
	switch h.Kind {
	case HookCommand:
		if h.URL != "" {
			return bad("a command hook takes no URL")
		}
		return validateHookCommand(h.Command)
	case HookFSFreeze:
		if h.URL != "" {
			return bad("an fsfreeze hook takes no URL, only a subdot")
		}
		if h.Subdot == "" {
			return bad("fsfreeze needs the subdot whose file system it freezes")
		}
		return ValidateSubdot(h.Subdot)
	case HookHTTP:
		return validateHookURL(h, "http", "https")
	case HookPostgreSQL:
		return validateHookURL(h, "postgres", "postgresql")
	case HookMySQL:
		return validateHookURL(h, "mysql", "mariadb")
	}
	return nil
}

func validateHookCommand(argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("%w: a command hook needs a command (after --)", ErrInvalidArgument)
	}
	if len(argv) > maxHookArgs {
		return fmt.Errorf("%w: a hook command has %d arguments; the limit is %d", ErrInvalidArgument, len(argv), maxHookArgs)
	}
	size := 0
	for _, a := range argv {
		size += len(a)
		if strings.IndexByte(a, 0) >= 0 || !utf8.ValidString(a) {
			return fmt.Errorf("%w: hook command argument %q holds a NUL byte or is not UTF-8", ErrInvalidArgument, truncate(a))
		}
	}
	if size > maxHookArgsBytes {
		return fmt.Errorf("%w: a hook command has %d bytes of arguments; the limit is %d", ErrInvalidArgument, size, maxHookArgsBytes)
	}
	return nil
}

func validateHookURL(h Hook, schemes ...string) error {
	if h.URL == "" {
		return fmt.Errorf("%w: a %s hook needs a URL (%s://...)", ErrInvalidArgument, h.Kind, schemes[0])
	}
	if len(h.URL) > maxHookURL {
		return fmt.Errorf("%w: the %s hook's URL has %d bytes; the limit is %d", ErrInvalidArgument, h.Kind, len(h.URL), maxHookURL)
	}
	if strings.ContainsFunc(h.URL, func(r rune) bool { return r < 0x20 || r == 0x7f }) || !utf8.ValidString(h.URL) {
		return fmt.Errorf("%w: the %s hook's URL holds control characters or is not UTF-8", ErrInvalidArgument, h.Kind)
	}
	scheme, _, _ := strings.Cut(h.URL, "://")
	if !slices.Contains(schemes, scheme) || !strings.Contains(h.URL, "://") {
		return fmt.Errorf("%w: the %s hook's URL %q is not a %s:// URL", ErrInvalidArgument, h.Kind, truncate(redactURL(h.URL)), schemes[0])
	}
	// Database URLs are the HookRunner's to parse (HookRunner.Check); an
	// HTTP URL is checked here.
	if h.Kind == HookHTTP {
		if u, err := url.Parse(h.URL); err != nil || u.Host == "" {
			return fmt.Errorf("%w: the http hook's URL %q has no host", ErrInvalidArgument, truncate(redactURL(h.URL)))
		}
	}
	return nil
}

// ParseHook builds a hook from the words a user gives after the stage:
// for pre-commit and post-commit a command (argv), or none and an HTTP
// URL; for quiesce the built-in's name (postgresql, mysql, fsfreeze)
// with its URL or subdot. timeout is a Go duration, "" for the default.
func ParseHook(stage string, args []string, hookURL, subdot, timeout string) (Hook, error) {
	h := Hook{Stage: stage, URL: hookURL, Subdot: subdot}
	if timeout != "" {
		d, err := time.ParseDuration(timeout)
		if err != nil {
			return Hook{}, fmt.Errorf("%w: hook timeout %q is not a duration like 30s or 2m", ErrInvalidArgument, truncate(timeout))
		}
		if d <= 0 {
			return Hook{}, fmt.Errorf("%w: hook timeout %s must be positive", ErrInvalidArgument, d)
		}
		h.Timeout = d
	}
	switch stage {
	case HookPreCommit, HookPostCommit:
		h.Kind = HookCommand
		if hookURL != "" {
			if len(args) > 0 {
				return Hook{}, fmt.Errorf("%w: a %s hook is a command or an HTTP URL, not both", ErrInvalidArgument, stage)
			}
			h.Kind = HookHTTP
		} else {
			h.Command = slices.Clone(args)
		}
	case HookQuiesce:
		if len(args) != 1 {
			return Hook{}, fmt.Errorf("%w: a quiesce hook is one of %s", ErrInvalidArgument, strings.Join(kindsOf[HookQuiesce], ", "))
		}
		h.Kind = args[0]
	}
	if err := h.Validate(); err != nil {
		return Hook{}, err
	}
	return h, nil
}

// DotHooks are the hooks of one dot, in stage order.
type DotHooks struct {
	Dot   DotName `json:"dot"`
	Hooks []Hook  `json:"hooks"`
}

// Of returns the hook of stage, or nil.
func (dh *DotHooks) Of(stage string) *Hook {
	if dh == nil {
		return nil
	}
	for i := range dh.Hooks {
		if dh.Hooks[i].Stage == stage {
			return &dh.Hooks[i]
		}
	}
	return nil
}

// hooksRecord is what the registry keeps under hooksKey.
type hooksRecord struct {
	Dot   DotID  `json:"dot"`
	Hooks []Hook `json:"hooks"`
}

// decodeHooks reads a hooks record and checks every hook in it: a record
// that does not validate runs nothing.
func decodeHooks(kv KV) (*hooksRecord, error) {
	rec, err := decode[hooksRecord](kv)
	if err != nil {
		return nil, err
	}
	for _, h := range rec.Hooks {
		if err := h.Validate(); err != nil {
			return nil, fmt.Errorf("%w: registry key %s: %v", ErrCorrupt, kv.Key, err)
		}
	}
	return rec, nil
}

// dotHooks returns the hooks of dot id and the record's revision (0 and
// no hooks when it has none).
func (n *Node) dotHooks(ctx context.Context, id DotID) ([]Hook, int64, error) {
	kv, err := n.store.Get(ctx, hooksKey(id))
	if err != nil {
		if isNotFound(err) {
			return nil, 0, nil
		}
		return nil, 0, err
	}
	rec, err := decodeHooks(kv)
	if err != nil {
		return nil, 0, err
	}
	return rec.Hooks, kv.Revision, nil
}

// Hooks returns the hooks of a dot.
func (n *Node) Hooks(ctx context.Context, name DotName) (*DotHooks, error) {
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, err
	}
	hooks, _, err := n.dotHooks(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	return &DotHooks{Dot: name, Hooks: orEmpty(hooks)}, nil
}

func orEmpty(h []Hook) []Hook {
	if h == nil {
		return []Hook{}
	}
	return h
}

// AllHooks returns the hooks of every dot that has any, sorted by dot.
func (n *Node) AllHooks(ctx context.Context) ([]DotHooks, error) {
	kvs, err := n.store.List(ctx, hooksPrefix)
	if err != nil {
		return nil, err
	}
	var out []DotHooks
	for _, kv := range kvs {
		rec, err := decodeHooks(kv)
		if err != nil {
			return nil, err
		}
		d, _, err := n.reg.dot(ctx, rec.Dot)
		if errors.Is(err, ErrNotFound) {
			continue // the dot went; its record is removed with it
		} else if err != nil {
			return nil, err
		}
		if len(rec.Hooks) > 0 {
			out = append(out, DotHooks{Dot: d.DotName(), Hooks: rec.Hooks})
		}
	}
	slices.SortFunc(out, func(a, b DotHooks) int { return strings.Compare(a.Dot.String(), b.Dot.String()) })
	return out, nil
}

// SetHook sets the hook of h.Stage on a dot, replacing the one it had. A
// node without a HookRunner refuses: it could not run it.
func (n *Node) SetHook(ctx context.Context, name DotName, h Hook) (*DotHooks, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if n.hooks == nil {
		return nil, fmt.Errorf("%w: this node runs no hooks (dotmesh.Options.Hooks is not set)", ErrNotSupported)
	}
	if err := n.hooks.Check(h); err != nil {
		return nil, err
	}
	return n.changeHooks(ctx, name, func(hooks []Hook) ([]Hook, error) {
		out := slices.DeleteFunc(hooks, func(o Hook) bool { return o.Stage == h.Stage })
		out = append(out, h)
		slices.SortStableFunc(out, func(a, b Hook) int {
			return slices.Index(HookStages, a.Stage) - slices.Index(HookStages, b.Stage)
		})
		return out, nil
	})
}

// RemoveHook removes the hook of stage from a dot; NotFoundError when it
// has none.
func (n *Node) RemoveHook(ctx context.Context, name DotName, stage string) (*DotHooks, error) {
	if _, ok := kindsOf[stage]; !ok {
		return nil, fmt.Errorf("%w: hook stage %q is not one of %s", ErrInvalidArgument, truncate(stage), strings.Join(HookStages, ", "))
	}
	return n.changeHooks(ctx, name, func(hooks []Hook) ([]Hook, error) {
		out := slices.DeleteFunc(hooks, func(o Hook) bool { return o.Stage == stage })
		if len(out) == len(hooks) {
			return nil, &NotFoundError{Kind: stage + " hook", Dot: name}
		}
		return out, nil
	})
}

// changeHooks rewrites a dot's hooks record in one conditional write,
// under the dot's lock so that no commit reads it half-changed.
func (n *Node) changeHooks(ctx context.Context, name DotName, change func([]Hook) ([]Hook, error)) (*DotHooks, error) {
	if err := name.Validate(); err != nil {
		return nil, err
	}
	d, drev, err := n.reg.dotByName(ctx, name)
	if err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	hooks, rev, err := n.dotHooks(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	hooks, err = change(slices.Clone(hooks))
	if err != nil {
		return nil, err
	}
	op := DeleteOp(hooksKey(d.ID))
	if len(hooks) > 0 {
		op = PutOp(hooksKey(d.ID), encode(hooksRecord{Dot: d.ID, Hooks: hooks}))
	}
	cond := IfAbsent(hooksKey(d.ID))
	if rev != 0 {
		cond = IfRevision(hooksKey(d.ID), rev)
	}
	// The dot must be as read: a delete between the read and this write
	// would leave a record nobody removes.
	if _, err := n.store.Txn(ctx, []Condition{cond, IfRevision(dotKey(d.ID), drev)}, []Op{op}); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: the hooks of %s changed meanwhile; try again", ErrConflict, name)
		}
		return nil, err
	}
	redacted := make([]Hook, len(hooks))
	for i, h := range hooks {
		redacted[i] = h.Redacted()
	}
	n.log.InfoContext(ctx, "hooks changed", "dot", name.String(), "hooks", redacted)
	return &DotHooks{Dot: name, Hooks: orEmpty(hooks)}, nil
}

// HookRunner runs hooks for the Node (Options.Hooks); package hooks has
// the node's. It logs what a hook writes with call.Log.
type HookRunner interface {
	// Run runs a pre-commit or post-commit hook (command or http) and
	// returns nil when it succeeded. ctx carries the hook's timeout: the
	// runner stops the hook (a command's whole process group) when it
	// ends.
	Run(ctx context.Context, h Hook, call HookCall) error
	// Quiesce brings an application to a clean point for a snapshot and
	// returns the function that lets it go again, which the Node calls
	// right after the snapshot whatever its outcome. ctx carries the
	// hook's timeout for getting there; the runner also lets go by itself
	// once the timeout has passed since the start, so that nothing stays
	// frozen or locked (release then reports it). On an error nothing is
	// left quiesced.
	Quiesce(ctx context.Context, h Hook, call HookCall) (release func(context.Context) error, err error)
	// Check refuses, before it is stored, a valid hook the runner could
	// not run: a URL it cannot parse, a program it does not find.
	Check(h Hook) error
}

// HookCall is what a hook is told: the dot and branch it runs for, and
// where their working state is; a post-commit hook also the outcome.
type HookCall struct {
	Dot     DotName
	Branch  string
	Root    string            // the branch's working tree (RootSubdot)
	Subdots map[string]string // subdot name -> its working directory
	Log     *slog.Logger
	// Outcome of the commit, for a post-commit hook: HookCommitted,
	// HookNothingToCommit or HookFailed, with the commit's id or the
	// error's message.
	Outcome string
	Commit  CommitID
	Error   string
}

// Commit outcomes a post-commit hook is told.
const (
	HookCommitted       = "committed"
	HookNothingToCommit = "nothing-to-commit"
	HookFailed          = "failed"
)

// HookError: a dot's hook failed (or timed out), so the commit was not
// made. It wraps ErrHookFailed.
type HookError struct {
	Dot     DotName
	Stage   string // HookPreCommit or HookQuiesce
	Hook    string // Hook.Name
	Problem string // the hook's own words: its error, the tail of its output
}

func (e *HookError) Error() string {
	return fmt.Sprintf("%v: the %s hook %s of %s failed, nothing committed: %s", ErrHookFailed, e.Stage, e.Hook, e.Dot, e.Problem)
}

func (e *HookError) Unwrap() error { return ErrHookFailed }

// hookRun is one commit's hooks.
type hookRun struct {
	n        *Node
	call     HookCall
	hooks    []Hook
	quiesced string // the quiesce hook that held across the snapshot
}

// startHooks reads d's hooks for a commit on b; nil when it has none.
func (n *Node) startHooks(ctx context.Context, d *Dot, b *Branch, be StorageBackend) (*hookRun, error) {
	hooks, _, err := n.dotHooks(ctx, d.ID)
	if err != nil || len(hooks) == 0 {
		return nil, err
	}
	if n.hooks == nil {
		return nil, fmt.Errorf("%w: dot %s has hooks, but this node runs none (dotmesh.Options.Hooks is not set)", ErrNotSupported, d.DotName())
	}
	call := HookCall{Dot: d.DotName(), Branch: b.Name, Subdots: map[string]string{}}
	call.Log = n.log.With("dot", call.Dot.String(), "branch", b.Name)
	if call.Root, err = be.SubdotPath(ctx, b.Ref(), RootSubdot); err != nil {
		return nil, err
	}
	subdots, err := be.Subdots(ctx, b.Ref())
	if err != nil {
		return nil, err
	}
	for _, h := range hooks { // an fsfreeze subdot exists once it is frozen
		if h.Subdot != "" && !slices.Contains(subdots, h.Subdot) {
			subdots = append(subdots, h.Subdot)
		}
	}
	for _, s := range subdots {
		if call.Subdots[s], err = be.SubdotPath(ctx, b.Ref(), s); err != nil {
			return nil, err
		}
	}
	return &hookRun{n: n, call: call, hooks: hooks}, nil
}

func (r *hookRun) of(stage string) *Hook {
	if r == nil {
		return nil
	}
	return (&DotHooks{Hooks: r.hooks}).Of(stage)
}

// pre runs the pre-commit hook; its failure refuses the commit.
func (r *hookRun) pre(ctx context.Context) error {
	h := r.of(HookPreCommit)
	if h == nil {
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, h.TimeoutOrDefault())
	defer cancel()
	start := time.Now()
	err := r.n.hooks.Run(hctx, *h, r.call)
	r.call.Log.InfoContext(ctx, "pre-commit hook ran", "hook", h.Name(), "took", time.Since(start), "err", err)
	if err != nil {
		return &HookError{Dot: r.call.Dot, Stage: HookPreCommit, Hook: h.Name(), Problem: err.Error()}
	}
	return nil
}

// held names the quiesce hook that held across the snapshot, "" for none.
func (r *hookRun) held() string {
	if r == nil {
		return ""
	}
	return r.quiesced
}

// quiesce runs the quiesce hook and returns what lets the application
// go; the returned function is never nil. r may be nil.
func (r *hookRun) quiesce(ctx context.Context) (func(), error) {
	h := r.of(HookQuiesce)
	if h == nil {
		return func() {}, nil
	}
	hctx, cancel := context.WithTimeout(ctx, h.TimeoutOrDefault())
	defer cancel()
	start := time.Now()
	release, err := r.n.hooks.Quiesce(hctx, *h, r.call)
	if err != nil {
		r.call.Log.WarnContext(ctx, "quiesce hook failed", "hook", h.Name(), "took", time.Since(start), "err", err)
		return func() {}, &HookError{Dot: r.call.Dot, Stage: HookQuiesce, Hook: h.Name(), Problem: err.Error()}
	}
	r.call.Log.InfoContext(ctx, "quiesced", "hook", h.Name(), "took", time.Since(start))
	return func() {
		// Released even when the commit's context ended: a frozen file
		// system or a held lock must not outlive the snapshot.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.TimeoutOrDefault())
		defer cancel()
		if err := release(rctx); err != nil {
			r.call.Log.WarnContext(ctx, "quiesce hook did not hold across the snapshot; recording the commit's own consistency", "hook", h.Name(), "err", err)
			return
		}
		r.call.Log.InfoContext(ctx, "released", "hook", h.Name(), "held", time.Since(start))
		r.quiesced = h.Name()
	}, nil
}

// post runs the post-commit hook, told the outcome; its failure is
// logged and changes nothing.
func (r *hookRun) post(ctx context.Context, c *Commit, err error) {
	h := r.of(HookPostCommit)
	if h == nil {
		return
	}
	call := r.call
	var nothing *NothingToCommitError
	switch {
	case err == nil && c != nil:
		call.Outcome, call.Commit = HookCommitted, c.ID
	case errors.As(err, &nothing):
		call.Outcome = HookNothingToCommit
	default:
		call.Outcome = HookFailed
		if err != nil {
			call.Error = err.Error()
		}
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.TimeoutOrDefault())
	defer cancel()
	start := time.Now()
	if herr := r.n.hooks.Run(hctx, *h, call); herr != nil {
		r.call.Log.WarnContext(ctx, "post-commit hook failed", "hook", h.Name(), "outcome", call.Outcome, "took", time.Since(start), "err", herr)
		return
	}
	r.call.Log.InfoContext(ctx, "post-commit hook ran", "hook", h.Name(), "outcome", call.Outcome, "took", time.Since(start))
}
