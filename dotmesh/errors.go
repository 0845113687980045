package dotmesh

import (
	"errors"
	"fmt"
)

// Sentinel errors. Implementations wrap them with %w and add what went wrong,
// so callers test with errors.Is and users read the wrapped message.
var (
	// ErrInvalidName: a name, ref or argument does not follow the rules.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidArgument: a request is malformed in some other way.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the dot, branch, commit or key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the dot, branch or key exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: a compare-and-swap lost, or state changed underneath.
	ErrConflict = errors.New("conflict")
	// ErrAmbiguous: a commit id prefix matches more than one commit.
	ErrAmbiguous = errors.New("ambiguous")
	// ErrDirty: the operation would discard uncommitted changes.
	ErrDirty = errors.New("uncommitted changes")
	// ErrUnauthorized: missing or wrong credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotSupported: the backend or store lacks an optional capability.
	ErrNotSupported = errors.New("not supported")
	// ErrCorrupt: stored or received data failed an integrity check.
	ErrCorrupt = errors.New("corrupt data")
	// ErrUnavailable: a backend tool, store or peer cannot be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrInUse: the dot or branch is in use (mounted, or held by another node).
	ErrInUse = errors.New("in use")
	// ErrPermissionDenied: the caller is known but its role does not allow
	// the call (PermissionError says which role it lacks).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrHookFailed: a dot's pre-commit or quiesce hook failed, so the
	// commit was not made (HookError says which).
	ErrHookFailed = errors.New("hook failed")
)

// Typed errors carry what went wrong as data, for programs and frontends
// to act on (a frontend adds its own advice, a command to run, to the
// message). Each wraps one of the sentinels above, so errors.Is keeps
// working, and its Error is the sentinel's words and a plain sentence.
// Match them with errors.As on a pointer: var nf *NotFoundError.

// Kinds of things a NotFoundError reports.
const (
	KindDot      = "dot"
	KindBranch   = "branch"
	KindCommit   = "commit"
	KindIncoming = "incoming transfer" // an unfinished transfer into this node
)

// NotFoundError: there is no Kind named Name in Dot. It wraps ErrNotFound.
type NotFoundError struct {
	Kind string // KindDot, KindBranch, KindCommit, KindIncoming, or another thing's name
	// Name is the branch name, the commit id or prefix; for KindIncoming
	// the branch ("" for any branch of Dot); empty for KindDot.
	Name string
	Dot  DotName // the dot looked for, or looked in
}

func (e *NotFoundError) Error() string {
	switch e.Kind {
	case KindDot:
		return fmt.Sprintf("%v: dot %s does not exist", ErrNotFound, e.Dot)
	case KindBranch:
		return fmt.Sprintf("%v: dot %s has no branch %s", ErrNotFound, e.Dot, e.Name)
	case KindCommit:
		return fmt.Sprintf("%v: no commit %s in dot %s", ErrNotFound, e.Name, e.Dot)
	case KindIncoming:
		what := e.Dot.String()
		if e.Name != "" {
			what += "@" + e.Name
		}
		return fmt.Sprintf("%v: no incoming transfer of %s on this node", ErrNotFound, what)
	}
	return fmt.Sprintf("%v: no %s %s in dot %s", ErrNotFound, e.Kind, e.Name, e.Dot)
}

func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// NoCommitsError: a ref was resolved on a branch that has no commits yet.
// It wraps ErrNotFound.
type NoCommitsError struct {
	Dot    DotName
	Branch string
}

func (e *NoCommitsError) Error() string {
	return fmt.Sprintf("%v: branch %s of %s has no commits yet", ErrNotFound, e.Branch, e.Dot)
}

func (e *NoCommitsError) Unwrap() error { return ErrNotFound }

// DirtyError: a transfer refused to replace a branch that has uncommitted
// changes; nothing was transferred. It wraps ErrDirty.
type DirtyError struct {
	Dot    DotName
	Branch string
	Where  string // the side holding the branch, in words: "this node", "the remote"
	Bytes  int64  // about how many bytes differ from the branch's head
}

func (e *DirtyError) Error() string {
	return fmt.Sprintf("%v: branch %s of %s on %s has uncommitted changes (about %d bytes); nothing was transferred. Commit or discard them there, then run the transfer again",
		ErrDirty, e.Branch, e.Dot, e.Where, e.Bytes)
}

func (e *DirtyError) Unwrap() error { return ErrDirty }

// PartlyRestoredError: the working state of a branch may be partly
// restored to Target, by a reset or transfer that did not finish. Running
// it again, or a hard reset to HEAD, makes it whole; until then the branch
// refuses commits.
//
// Err is the failure that stopped a restore just now, and the error
// unwraps to it; when Err is nil an earlier restore was found unfinished,
// and the error wraps ErrConflict.
type PartlyRestoredError struct {
	Dot    DotName
	Branch string
	Target CommitID
	Err    error
}

func (e *PartlyRestoredError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("restoring %s@%s to %s: %v (the working state may be partly restored: run it again, or reset the branch hard to HEAD)", e.Dot, e.Branch, short(e.Target), e.Err)
	}
	return fmt.Sprintf("%v: the working state of %s@%s is partly restored to %s (an interrupted reset or transfer); repeat that, or reset the branch hard to HEAD", ErrConflict, e.Dot, e.Branch, short(e.Target))
}

func (e *PartlyRestoredError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrConflict
}

// MasterDownError: in cluster mode, a branch's working state is on Node,
// which is not running. TakeOver moves it to the calling node, losing
// that node's uncommitted changes. It wraps ErrUnavailable.
type MasterDownError struct {
	Dot    DotName
	Branch string
	Node   string
}

func (e *MasterDownError) Error() string {
	return fmt.Sprintf("%v: branch %s of %s has its working state on node %s, which is not running; a take-over moves it here, losing that node's uncommitted changes",
		ErrUnavailable, e.Branch, e.Dot, e.Node)
}

func (e *MasterDownError) Unwrap() error { return ErrUnavailable }

// SourceBoundError: a subdot of a branch is bound to a database source
// already (of kind Kind), so it cannot be bound again until that source is
// removed. It wraps ErrAlreadyExists.
type SourceBoundError struct {
	Ref    BranchRef
	Subdot string
	Kind   string // the bound source's kind: postgresql, mysql...
}

func (e *SourceBoundError) Error() string {
	return fmt.Sprintf("%v: subdot %s of %s is bound to a %s source already; remove that source first", ErrAlreadyExists, e.Subdot, e.Ref, e.Kind)
}

func (e *SourceBoundError) Unwrap() error { return ErrAlreadyExists }

// InvalidOptionError: an option of a call has a value the call cannot
// take. It wraps ErrInvalidArgument.
type InvalidOptionError struct {
	Option  string // the Go option, Type.Field: "CommitOptions.Message"
	Problem string // what is wrong, in words: "a commit needs a message"
}

func (e *InvalidOptionError) Error() string {
	return fmt.Sprintf("%v: %s (%s)", ErrInvalidArgument, e.Problem, e.Option)
}

func (e *InvalidOptionError) Unwrap() error { return ErrInvalidArgument }

// UncommittedError: a reset would discard the uncommitted changes of a
// branch, and was not told to (ResetOptions.Hard). It wraps ErrDirty.
type UncommittedError struct {
	Dot    DotName
	Branch string
	Bytes  int64 // about how many bytes differ from the branch's head
}

func (e *UncommittedError) Error() string {
	return fmt.Sprintf("%v: branch %s of %s has %d uncommitted bytes; commit them, or reset with ResetOptions.Hard to discard them", ErrDirty, e.Branch, e.Dot, e.Bytes)
}

func (e *UncommittedError) Unwrap() error { return ErrDirty }

// MountsInUseError: Op would change data under running consumers of the
// dot's mounts, and was not told to restart them (the Restart option of
// Checkout and Reset). It wraps ErrInUse.
type MountsInUseError struct {
	Op    string // "checkout", "reset"
	Users string // who uses the mounts, in words
}

func (e *MountsInUseError) Error() string {
	return fmt.Sprintf("%v: %s would change data under %s; stop them first, or set the Restart option to stop and start them around the %s", ErrInUse, e.Op, e.Users, e.Op)
}

func (e *MountsInUseError) Unwrap() error { return ErrInUse }

// DivergedError: a transfer refused to replace a branch whose history
// does not lead to the incoming head; nothing was changed.
// TransferOptions.StashOnDivergence moves the receiving side's commits
// aside instead. It wraps ErrDiverged.
type DivergedError struct {
	Dot    DotName
	Branch string
	// Common is the last commit both sides have, "" when they share none.
	Common CommitID
	// Start, when set, is where the sending side's history starts (gc
	// removed what came before), and Head the receiving side's head,
	// which is not in it: whether the histories diverged cannot be told.
	Start CommitID
	Head  CommitID
}

func (e *DivergedError) Error() string {
	return e.Refusal() + ". TransferOptions.StashOnDivergence moves the receiving side's commits to a new branch and takes the incoming ones"
}

// Refusal is the message up to the advice on stashing, for frontends
// that give their own.
func (e *DivergedError) Refusal() string {
	if e.Start != "" {
		return fmt.Sprintf("%v: branch %s of %s: the sending side's history starts at %s (gc removed what came before) and the receiving side's head %s is not in it, so it cannot be told whether the incoming commits follow it; nothing was changed", ErrDiverged, e.Branch, e.Dot, e.Start, e.Head)
	}
	at := "they share no commit"
	if e.Common != "" {
		at = "the last common commit is " + string(e.Common)
	}
	return fmt.Sprintf("%v: branch %s of %s has diverged: both sides have commits the other lacks (%s); nothing was changed", ErrDiverged, e.Branch, e.Dot, at)
}

func (e *DivergedError) Unwrap() error { return ErrDiverged }

// PermissionError: a principal lacks the role a call needs. It wraps
// ErrPermissionDenied and names what is missing, so that a frontend can
// say which permission to ask for.
type PermissionError struct {
	User        string   // "" for the anonymous caller
	Action      string   // what was refused: "commit", "share", "list users"...
	Need        Role     // the role the call needs
	Have        Role     // the role the caller has (RoleNone: cannot see it)
	Dot         *DotName // the dot, nil for node-wide actions
	ReadOnlyKey bool     // the caller's role was capped by a read-only key
}

func (e *PermissionError) Error() string {
	who := "the anonymous caller"
	if e.User != "" {
		who = fmt.Sprintf("user %q", e.User)
	}
	on := "this node"
	if e.Dot != nil {
		on = e.Dot.String()
	}
	why := fmt.Sprintf("has %s on %s", e.Have, on)
	if e.ReadOnlyKey {
		why = fmt.Sprintf("uses a read-only key on %s", on)
	}
	return fmt.Sprintf("%v: %s needs %s, and %s %s", ErrPermissionDenied, e.Action, e.Need, who, why)
}

func (e *PermissionError) Unwrap() error { return ErrPermissionDenied }

// NamespaceInUseError: a user cannot be removed while their namespace
// holds dots. It wraps ErrInUse.
type NamespaceInUseError struct {
	User string
	Dots int
}

func (e *NamespaceInUseError) Error() string {
	return fmt.Sprintf("%v: namespace %s still holds %d dot(s); delete them, or move them elsewhere, before removing the user", ErrInUse, e.User, e.Dots)
}

func (e *NamespaceInUseError) Unwrap() error { return ErrInUse }

// NothingToCommitError: a commit was asked for, but the working state
// equals the branch head (and the caller did not allow an empty commit).
// It wraps ErrConflict.
type NothingToCommitError struct {
	Dot    DotName
	Branch string
	Head   CommitID
}

func (e *NothingToCommitError) Error() string {
	if e.Head == "" {
		return fmt.Sprintf("%v: nothing to commit: branch %s of %s holds no file yet", ErrConflict, e.Branch, e.Dot)
	}
	return fmt.Sprintf("%v: nothing to commit: the working state of branch %s of %s equals its head commit %s", ErrConflict, e.Branch, e.Dot, e.Head)
}

func (e *NothingToCommitError) Unwrap() error { return ErrConflict }
