package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The core's typed errors carry data and plain sentences; dm prints each
// with the dm command that helps. hinted finds every typed error in err
// (also those a node sent: api.RemoteError rebuilds them) and puts dm's
// words in place of its sentence, wherever wrapping put it in the message.
// A sentence not found as sent (a node of another version words it
// differently) stays as it is.
func hinted(err error) string {
	msg := err.Error()
	for _, t := range typedErrors(err) {
		msg = strings.Replace(msg, t.Error(), hint(t), 1)
	}
	return msg
}

// typedErrors returns the typed dotmesh errors in err's chain, outer
// ones first (a PartlyRestoredError may wrap another).
func typedErrors(err error) []error {
	var (
		pr *dotmesh.PartlyRestoredError
		nf *dotmesh.NotFoundError
		nc *dotmesh.NoCommitsError
		de *dotmesh.DirtyError
		md *dotmesh.MasterDownError
		sb *dotmesh.SourceBoundError
		io *dotmesh.InvalidOptionError
		ue *dotmesh.UncommittedError
		mu *dotmesh.MountsInUseError
		dv *dotmesh.DivergedError
		pe *dotmesh.PermissionError
		nt *dotmesh.NothingToCommitError
		he *dotmesh.HookError
		ts []error
	)
	if errors.As(err, &pr) {
		ts = append(ts, pr)
	}
	if errors.As(err, &nf) {
		ts = append(ts, nf)
	}
	if errors.As(err, &nc) {
		ts = append(ts, nc)
	}
	if errors.As(err, &de) {
		ts = append(ts, de)
	}
	if errors.As(err, &md) {
		ts = append(ts, md)
	}
	if errors.As(err, &sb) {
		ts = append(ts, sb)
	}
	if errors.As(err, &io) {
		ts = append(ts, io)
	}
	if errors.As(err, &ue) {
		ts = append(ts, ue)
	}
	if errors.As(err, &mu) {
		ts = append(ts, mu)
	}
	if errors.As(err, &dv) {
		ts = append(ts, dv)
	}
	if errors.As(err, &pe) {
		ts = append(ts, pe)
	}
	if errors.As(err, &nt) {
		ts = append(ts, nt)
	}
	if errors.As(err, &he) {
		ts = append(ts, he)
	}
	return ts
}

// hint returns dm's words for one typed error.
func hint(t error) string {
	const resetHead = "`dm reset --hard HEAD`"
	switch e := t.(type) {
	case *dotmesh.NotFoundError:
		switch e.Kind {
		case dotmesh.KindDot:
			return e.Error() + "; `dm list` shows the dots"
		case dotmesh.KindBranch:
			return e.Error() + "; `dm branch` lists them"
		case dotmesh.KindCommit:
			return e.Error() + "; `dm log` lists commit ids"
		case dotmesh.KindIncoming:
			return e.Error() + "; `dm transfers` lists them"
		case dotmesh.KindTag:
			return e.Error() + "; `dm tag` lists them"
		case dotmesh.KindRef:
			return e.Error() + "; `dm branch`, `dm tag` and `dm log` list what a ref may name"
		}
	case *dotmesh.NoCommitsError:
		return e.Error() + "; `dm commit -m MSG` makes the first"
	case *dotmesh.DirtyError:
		return fmt.Sprintf("%v: branch %s of %s on %s has uncommitted changes (about %d bytes); nothing was transferred. Commit them there (`dm commit`) or discard them (%s), then run the transfer again",
			dotmesh.ErrDirty, e.Branch, e.Dot, e.Where, e.Bytes, resetHead)
	case *dotmesh.PartlyRestoredError:
		if e.Err != nil {
			return fmt.Sprintf("restoring %s@%s to %s: %v (the working state may be partly restored: run the command again, or %s to return to the head)", e.Dot, e.Branch, commitOrNone(e.Target), e.Err, resetHead)
		}
		return fmt.Sprintf("%v: the working state of %s@%s is partly restored to %s (an interrupted reset or transfer); repeat that, or run %s to return to the head", dotmesh.ErrConflict, e.Dot, e.Branch, commitOrNone(e.Target), resetHead)
	case *dotmesh.MasterDownError:
		return fmt.Sprintf("%v: branch %s of %s has its working state on node %s, which is not running; `dm dot take-over %s %s` moves it here, losing that node's uncommitted changes",
			dotmesh.ErrUnavailable, e.Branch, e.Dot, e.Node, e.Dot, e.Branch)
	case *dotmesh.SourceBoundError:
		return fmt.Sprintf("%v: subdot %s of %s is bound to a %s source already; `dm source rm` it first", dotmesh.ErrAlreadyExists, e.Subdot, e.Ref, e.Kind)
	case *dotmesh.InvalidOptionError:
		if flag, ok := optionWords[e.Option]; ok {
			return fmt.Sprintf("%v: %s", dotmesh.ErrInvalidArgument, flag)
		}
	case *dotmesh.UncommittedError:
		return fmt.Sprintf("%v: branch %s of %s has %d uncommitted bytes; commit them or use --hard to discard them", dotmesh.ErrDirty, e.Branch, e.Dot, e.Bytes)
	case *dotmesh.MountsInUseError:
		return fmt.Sprintf("%v: %s would change data under %s; stop them first, or pass --restart to stop and start them around the %s", dotmesh.ErrInUse, e.Op, e.Users, e.Op)
	case *dotmesh.DivergedError:
		return e.Refusal() + ". Pass --stash-on-divergence to move the receiving side's commits to a new branch and take the incoming ones"
	case *dotmesh.PermissionError:
		return e.Error() + "; " + permissionHint(e)
	case *dotmesh.NothingToCommitError:
		if e.Head == "" {
			return fmt.Sprintf("nothing to commit: %s@%s holds no file yet; pass --allow-empty to commit anyway", e.Dot, e.Branch)
		}
		return fmt.Sprintf("nothing to commit: the working state of %s@%s equals its head %s; pass --allow-empty to commit anyway", e.Dot, e.Branch, e.Head)
	case *dotmesh.HookError:
		return fmt.Sprintf("the %s hook %s of %s failed, nothing committed: %s (`dm hook list %s` shows its hooks)", e.Stage, e.Hook, e.Dot, e.Problem, e.Dot)
	}
	return t.Error()
}

// optionWords are dm's words, naming its flags, for the core's options a
// flag sets.
var optionWords = map[string]string{
	"CommitOptions.Message": "a commit needs a message (-m)",
	"GCOptions.Keep":        "--keep must be >= 1 (0: remove no commits)",
}

// commitOrNone prints a commit id as the core's messages do.
func commitOrNone(id dotmesh.CommitID) string {
	if id == "" {
		return "(no commit)"
	}
	return string(id)
}

// checkoutHint adds, to a checkout of a branch that does not exist, how
// to create it.
func checkoutHint(err error, branch string, create bool) error {
	var nf *dotmesh.NotFoundError
	if create || !errors.As(err, &nf) || nf.Kind != dotmesh.KindBranch || nf.Name != branch {
		return err
	}
	return &suffixed{err, fmt.Sprintf(" (use `dm checkout -b %s` to create it)", branch)}
}

// suffixed is err with words after its message.
type suffixed struct {
	err    error
	suffix string
}

func (e *suffixed) Error() string { return e.err.Error() + e.suffix }
func (e *suffixed) Unwrap() error { return e.err }

// permissionHint says who can grant what a refused call lacked.
func permissionHint(e *dotmesh.PermissionError) string {
	switch {
	case e.User == "":
		return "add the remote with a user and API key (`dm remote add NAME USER@HOST`)"
	case e.ReadOnlyKey:
		return "use a full key for this (`dm key add` makes one)"
	case e.Dot == nil || e.Need >= dotmesh.RoleAdmin:
		return "only an admin of the node can do this"
	}
	owner := e.Dot.Namespace
	if owner == "" {
		owner = dotmesh.DefaultNamespace
	}
	if e.Need >= dotmesh.RoleOwner {
		return fmt.Sprintf("only the dot's owner (%s) or an admin can do this", owner)
	}
	flag := "--read"
	if e.Need == dotmesh.RoleWrite {
		flag = "--write"
	}
	return fmt.Sprintf("the dot's owner (%s) or an admin can grant it: `dm dot share %s/%s %s %s`",
		owner, owner, e.Dot.Name, e.User, flag)
}

// bucketWorded is an error of a bucket remote already in dm's words.
type bucketWorded struct{ err error }

func (e *bucketWorded) Error() string { return e.err.Error() }
func (e *bucketWorded) Unwrap() error { return e.err }

// bucketError words an error of bucket remote name (from this process or,
// through a node's transfer, from the node): which remote, what went
// wrong, and what to do, keeping the error's kind for the exit status.
func bucketError(err error, name string, b *BucketRemote) error {
	var done *bucketWorded
	switch {
	case err == nil || errors.As(err, &done) || errors.Is(err, errUsage) || errors.Is(err, errInterrupted) || err == errDamage:
		return err
	case errors.Is(err, context.Canceled):
		return errInterrupted
	}
	var nf *dotmesh.NotFoundError
	hint := ""
	switch {
	case errors.Is(err, dotmesh.ErrUnauthorized):
		hint = "give the repository's password with --password-file FILE, $" + passwordEnv + " or at the prompt on a terminal"
	case errors.Is(err, dotmesh.ErrPermissionDenied):
		hint = "the S3 credentials lack that permission: check $AWS_ACCESS_KEY_ID (or the remote's --profile) and the bucket's policy; push and gc need to write and delete"
	case isKeyInUse(err):
		hint = "pass --force to remove it anyway"
	case errors.Is(err, dotmesh.ErrInUse):
		hint = fmt.Sprintf("try again when it is done; if its holder is gone, `dm remote unlock %s` removes stale locks", name)
	case errors.Is(err, dotmesh.ErrCorrupt):
		hint = fmt.Sprintf("nothing damaged was used as data; `dm verify %s --read-data` lists what is damaged", name)
	case errors.As(err, &nf):
		hint = fmt.Sprintf("`dm list %s` shows what the bucket holds", name)
	case errors.Is(err, dotmesh.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		hint = "check that the S3 server runs and that the remote's endpoint is right, then try again"
		if b != nil && b.Endpoint != "" {
			hint = "check that the S3 server at " + b.Endpoint + " runs, then try again"
		}
		err = kinded(dotmesh.ErrUnavailable, err)
	}
	msg := fmt.Errorf("bucket remote %s: %w", name, err)
	if hint == "" {
		return &bucketWorded{msg}
	}
	return &bucketWorded{&suffixed{msg, "; " + hint}}
}

// missingRepository words a bucket remote whose store holds no
// repository.
func missingRepository(err error, name string, b *BucketRemote) error {
	return &bucketWorded{&suffixed{fmt.Errorf("bucket remote %s: %w", name, err),
		fmt.Sprintf("; check the URL (%s) and its endpoint; `dm remote rm %s`, then `dm remote add %s URL` makes a repository in an empty bucket", b.URL, name, name)}}
}
