package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// push, pull and clone: dm asks the node it talks to (the current remote,
// or --remote) to transfer with the node REMOTE names, handing it REMOTE's
// URL, key and CA for this one call. The nodes then talk directly; dm only
// shows progress. A bucket REMOTE is handed over the same way: its URL,
// the S3 credentials dm found and the repository's password, for this one
// call; the node opens the bucket itself.

type transferFlags struct {
	remoteName string // --remote-name / --local-name
	stash      bool
	neutral    bool
	quiet      bool
	bind       bool // clone --bind
	binds      bindFlags
}

func (a *app) pushCmd() *cobra.Command {
	var (
		f   transferFlags
		sel selection
	)
	c := &cobra.Command{
		Use:   "push REMOTE [DOT [BRANCH]]",
		Short: "Send a dot's commits to another node",
		Long: `Send the commits of BRANCH (default: the current branch) of DOT (default: the
current dot) that the node REMOTE lacks, then move REMOTE's branch to the
same head. The first push creates the dot there and records it as the
dot's upstream on REMOTE, so later pushes need no arguments beyond REMOTE.
To a hub, as a user other than admin (` + "`dm remote add hub alice@HOST`" + `), the dot
goes to that user's namespace: alice/DOT.

Only missing commits travel, each as the backend's incremental stream from
the newest commit REMOTE has (or, between different backends, as a
backend-neutral stream of the paths changed since it). Every stream is checksummed end to end; nothing
becomes visible on REMOTE before it arrived whole. An interrupted push is
resumed by running it again: commits that arrived are not sent again. A
node that moves no data for --idle-timeout (default 60s; a slow transfer
that keeps moving is never cut) or cannot be connected to within
--connect-timeout ends the push with an error naming it.

REMOTE refuses when its branch has uncommitted changes, and when both sides
have commits the other lacks ("diverged"); --stash-on-divergence then moves
REMOTE's own commits to a new branch BRANCH-DIVERGED-<UTC time> instead.

Tags on the branch's commits travel too (also when no commit has to): REMOTE
makes those it lacks, and keeps its own tag of a name at another commit,
which dm names in a warning.

The node dm talks to (--remote, default the current remote) runs the
transfer and talks to REMOTE directly, with REMOTE's address, key and CA
from the client config. A progress line shows on a terminal; --json prints
a summary (commits, bytes, duration) at the end.

REMOTE may be a bucket remote (` + "`dm remote add NAME s3://BUCKET`" + `): the node
dm talks to cuts the dot's files into chunks and uploads those the bucket
lacks, sealed, so a small change uploads little; a re-run resumes, and
nothing shows in the bucket before the branch's head moves. dm hands the
node the S3 credentials it finds and the repository's password
(--password-file, the remote's saved file, $DOTMESH_REMOTE_PASSWORD, or
a prompt) for this one call. A file:/// bucket is written by the node
into its own filesystem, so only an admin of the node may use one.` + allHelp,
		Example: `  dm push prod
  dm push prod app master --remote-name team/app
  dm push backup app --json
  DOTMESH_REMOTE_PASSWORD=$PW dm push s3 app
  dm push --all prod
  dm push --all --label app=shop backup`,
		Args: usageArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sel.all || sel.namespace != "" || len(sel.labels) > 0 {
				chosen, err := sel.check("", len(args)-1)
				if err != nil {
					return err
				}
				return a.transferAll(cmd, "push", chosen, args, f)
			}
			return a.transfer(cmd, "push", args, f)
		},
	}
	c.Flags().StringVar(&f.remoteName, "remote-name", "", "name `[NS/]DOT` of the dot on REMOTE (default: its upstream, else the same name)")
	a.transferFlags(c, &f)
	selectionFlags(c, &sel)
	return c
}

func (a *app) pullCmd() *cobra.Command {
	var (
		f   transferFlags
		sel selection
	)
	c := &cobra.Command{
		Use:   "pull REMOTE [DOT [BRANCH]]",
		Short: "Fetch a dot's new commits from another node",
		Long: `Fetch the commits of BRANCH (default: the current branch) of DOT (default:
the current dot) that this node lacks from the node REMOTE, then move the
local branch and its working state to REMOTE's head. DOT must exist here;
` + "`dm clone`" + ` fetches a dot this node does not have yet.

The local branch must have no uncommitted changes. When both sides have
commits the other lacks, the pull is refused ("diverged") unless
--stash-on-divergence moves the local commits to a new branch
BRANCH-DIVERGED-<UTC time>. Re-running an interrupted pull resumes it.
Tags on the branch's commits come too, as with push. REMOTE may be a bucket
remote, as with push.` + allHelp,
		Example: `  dm pull prod
  dm pull prod app master --remote-name team/app
  dm pull --all --namespace shop prod`,
		Args: usageArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sel.all || sel.namespace != "" || len(sel.labels) > 0 {
				chosen, err := sel.check("", len(args)-1)
				if err != nil {
					return err
				}
				return a.transferAll(cmd, "pull", chosen, args, f)
			}
			return a.transfer(cmd, "pull", args, f)
		},
	}
	c.Flags().StringVar(&f.remoteName, "remote-name", "", "name `[NS/]DOT` of the dot on REMOTE (default: its upstream, else the same name)")
	a.transferFlags(c, &f)
	selectionFlags(c, &sel)
	return c
}

func (a *app) cloneCmd() *cobra.Command {
	var f transferFlags
	c := &cobra.Command{
		Use:   "clone REMOTE DOT [BRANCH]",
		Short: "Copy a dot from another node",
		Long: `Copy BRANCH (default master) of DOT from the node REMOTE to this node, with
its whole history and the tags on it, as DOT (or --local-name). REMOTE becomes the new dot's
upstream, so ` + "`dm pull REMOTE`" + ` and ` + "`dm push REMOTE`" + ` work without more arguments.
Re-running an interrupted clone resumes it.

From a hub, as a user other than admin, DOT without a namespace is that
user's own, and the local dot is named DOT's name alone in this node's
user's namespace: ` + "`dm clone hub bob/app`" + ` makes app here.

From a bucket remote the dot lands on whatever backend this node runs
(a zfs dot pushed from a server clones onto a laptop's files backend);
every chunk is checked against its seal and id on the way.

With --bind, the subdots the head commit has source templates for (the
bindings of its databases, without passwords) are bound to the databases
of the same URL here, or those --map SUBDOT=URL names, and the commit's
dumps are loaded into them (see ` + "`dm source bind --help`" + `).`,
		Example: `  dm clone prod app
  dm clone prod team/app master --local-name app-copy
  dm clone hub bob/app
  dm clone backup app --password-file ~/.dm-pw
  dm clone prod app --bind --map db='postgres://app:secret@/shop?host=/run/postgresql'`,
		Args: usageArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.transfer(cmd, "clone", args, f)
		},
	}
	c.Flags().StringVar(&f.remoteName, "local-name", "", "name `[NS/]DOT` of the new local dot (default: DOT)")
	c.Flags().BoolVar(&f.bind, "bind", false, "then bind the head commit's source templates to this node's databases (as dm source bind --all) and load their dumps")
	f.binds.add(c)
	a.transferFlags(c, &f)
	return c
}

func (a *app) transferFlags(c *cobra.Command, f *transferFlags) {
	c.Flags().BoolVar(&f.stash, "stash-on-divergence", false, "on divergence, move the receiving side's commits to BRANCH-DIVERGED-<time> and take the incoming ones")
	c.Flags().BoolVar(&f.neutral, "neutral", false, "send the backend-neutral stream even between nodes with the same backend")
	c.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "no progress output")
	a.passwordFileFlag(c)
}

func (a *app) transfer(cmd *cobra.Command, op string, args []string, f transferFlags) error {
	maps, err := f.binds.parse()
	if err != nil {
		return err
	}
	if len(maps) > 0 && !f.bind {
		return kinded(dotmesh.ErrInvalidArgument, errors.New("--map goes with --bind"))
	}
	s, err := a.connect()
	if err != nil {
		return err
	}
	peerName := args[0]
	req, peer, peerUser, err := a.transferTo(s, op, peerName, f)
	if err != nil {
		return err
	}
	var dotArg string
	if len(args) > 1 {
		dotArg = args[1]
	}
	if len(args) > 2 {
		req.Branch = args[2]
	}
	switch op {
	case "clone":
		remote, err := ownDot(dotArg, peerUser)
		if err != nil {
			return err
		}
		local := remote
		if peerUser != dotmesh.AdminUser {
			// From a hub user's remote, bob/app clones as this side's own
			// app (as git clone names the directory); admin to admin keeps
			// the namespace.
			local = dotmesh.DotName{Namespace: s.remote.User, Name: remote.Name}
			if local.Namespace == "" {
				local.Namespace = dotmesh.DefaultNamespace
			}
		}
		if f.remoteName != "" {
			if local, err = s.dotArg(f.remoteName); err != nil {
				return err
			}
		}
		if err := local.ValidateNew(); err != nil {
			return err
		}
		req.Dot, req.RemoteDot = local.String(), remote.String()
	default:
		local, err := s.currentDot(dotArg)
		if err != nil {
			return err
		}
		req.Dot = local.String()
		if f.remoteName != "" {
			remote, err := ownDot(f.remoteName, peerUser)
			if err != nil {
				return err
			}
			req.RemoteDot = remote.String()
		}
	}
	if peer.Bucket != nil {
		// Asked for last, once the arguments are known to be good.
		if req.Remote.Bucket, err = a.transferBucket(peerName, peer.Bucket); err != nil {
			return err
		}
	}
	bar := a.newProgress(op, f.quiet)
	res, err := s.c.Transfer(cmd.Context(), req, bar.update)
	bar.done(err == nil)
	if err != nil {
		err = transferError(s, err, peerName, peer)
		if bar.moved() && !strings.Contains(err.Error(), "resume") {
			// What arrived is kept on the receiving side: say so here,
			// not only in the node's log, in the error's one line.
			err = &resumableError{err: err, op: op}
		}
		return err
	}
	if op == "clone" && s.remote.CurrentDot == "" {
		_ = s.setCurrentDot(req.Dot)
	}
	if f.bind {
		if err := a.bindCloned(cmd.Context(), s, res, maps); err != nil {
			return err
		}
	}
	if len(res.SkippedTags) > 0 { // on stderr, so -H and --json output stays clean
		fmt.Fprintf(a.io.Stderr, "Warning: the receiving side kept its own %s (at another commit, or a branch of that name): %s; `dm tag -d` it there and transfer again to take the sender's.\n",
			plural(len(res.SkippedTags), "tag", "tags"), strings.Join(res.SkippedTags, ", "))
	}
	if a.jsonOut {
		return writeJSON(a.out(), res)
	}
	if a.scripting {
		fmt.Fprintf(a.out(), "%s\t%s\t%s\t%d\t%d\t%d\n", res.Dot, res.Branch, res.Head, res.Commits, res.Bytes, res.Duration.Milliseconds())
		return nil
	}
	switch {
	case res.UpToDate && res.Behind > 0:
		a.info("Nothing to %s: the receiving side of %s@%s is %d commit(s) ahead; pull them first.", op, res.Dot, res.Branch, res.Behind)
	case res.UpToDate:
		a.info("%s@%s is up to date (%s).", res.Dot, res.Branch, shortID(string(res.Head)))
	default:
		msg := fmt.Sprintf("%sed %s@%s to %s: %d commit(s), %s in %s", pastTense(op), res.Dot, res.Branch, shortID(string(res.Head)), res.Commits, HumanSize(res.Bytes), res.Duration.Round(time.Millisecond))
		if op == "push" { // res.Dot is the receiver's: say which node that is
			msg = fmt.Sprintf("Pushed to %s's %s@%s (now %s): %d commit(s), %s in %s", peerName, res.Dot, res.Branch, shortID(string(res.Head)), res.Commits, HumanSize(res.Bytes), res.Duration.Round(time.Millisecond))
		}
		if res.Skipped > 0 {
			msg += fmt.Sprintf(" (%d already there from an interrupted transfer)", res.Skipped)
		}
		a.info("%s.", msg)
		if res.Stashed != "" {
			a.info("The receiving side's diverged commits are on branch %s.", res.Stashed)
		}
	}
	if len(res.Tags) > 0 {
		a.info("New %s: %s.", plural(len(res.Tags), "tag", "tags"), strings.Join(res.Tags, ", "))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func pastTense(op string) string {
	switch op {
	case "push":
		return "Push"
	case "pull":
		return "Pull"
	}
	return "Clon"
}

// bindCloned binds the source templates of a cloned dot's head commit
// and loads the commit's dumps into those databases (a hard reset to
// the head).
func (a *app) bindCloned(ctx context.Context, s *session, res *dotmesh.TransferResult, maps map[string]string) error {
	name, err := dotmesh.ParseDotName(res.Dot)
	if err != nil {
		return err
	}
	if err := a.bindTemplates(ctx, s, name, res.Branch, maps); err != nil {
		return fmt.Errorf("cloned %s, but binding its sources: %w", res.Dot, err)
	}
	if _, err := s.c.Reset(ctx, name, res.Branch, "HEAD", true); err != nil {
		return fmt.Errorf("cloned and bound %s, but loading the dumps into the databases: %w", res.Dot, s.wrap(err))
	}
	a.info("Loaded the dumps of %s into the bound databases.", shortID(string(res.Head)))
	return nil
}

// resumableError is a transfer's error after data moved: the receiver
// keeps what arrived, so the same command resumes. It keeps err's kind.
type resumableError struct {
	err error
	op  string
}

func (e *resumableError) Error() string {
	return fmt.Sprintf("%v; what the %s moved is kept, so running the same command again resumes it", e.err, e.op)
}

func (e *resumableError) Unwrap() error { return e.err }
