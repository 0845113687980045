package api

import (
	"errors"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Reason is the typed dotmesh error behind an Error, as data, so that a
// client rebuilds the same type and errors.As works on both sides of the
// API. Type names the dotmesh type; the other fields are its fields, those
// it has. A client that does not know Type (a newer server) keeps the
// message and the code alone, as do servers that send no reason.
//
//	not_found        NotFoundError{Kind, Name, Dot}
//	no_commits       NoCommitsError{Dot, Branch}
//	dirty            DirtyError{Dot, Branch, Where, Bytes}
//	partly_restored  PartlyRestoredError{Dot, Branch, Commit, Cause}
//	master_down      MasterDownError{Dot, Branch, Node}
//	source_bound     SourceBoundError{Dot (the dot's id), Branch, Subdot, Kind}
//	invalid_option   InvalidOptionError{Name (the Option), Problem}
//	uncommitted      UncommittedError{Dot, Branch, Bytes}
//	mounts_in_use    MountsInUseError{Op, Users}
//	diverged         DivergedError{Dot, Branch, Commit (the Common one), Start, Head}
//	permission       PermissionError{User, Op (the Action), Need, Have, Dot (when set), ReadOnly}
//	hook_failed      HookError{Dot, Op (the Stage), Name (the Hook), Problem}
type Reason struct {
	Type      string `json:"type"`
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"` // of Dot, when Dot is a name
	Dot       string `json:"dot,omitempty"`
	Branch    string `json:"branch,omitempty"`
	Where     string `json:"where,omitempty"`
	Node      string `json:"node,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
	Commit    string `json:"commit,omitempty"`
	Subdot    string `json:"subdot,omitempty"`
	Problem   string `json:"problem,omitempty"`
	Op        string `json:"op,omitempty"`
	Users     string `json:"users,omitempty"`
	Start     string `json:"start,omitempty"`
	Head      string `json:"head,omitempty"`
	// User, Need, Have and ReadOnly are a permission refusal's: who was
	// refused, the role the call needs and the one the caller has, and
	// whether a read-only key capped it.
	User     string       `json:"user,omitempty"`
	Need     dotmesh.Role `json:"need,omitempty"`
	Have     dotmesh.Role `json:"have,omitempty"`
	ReadOnly bool         `json:"read_only,omitempty"`
	// Cause is the failure a partly_restored error wraps, with its own
	// code and reason.
	Cause *Error `json:"cause,omitempty"`
}

// Reason types, one per typed dotmesh error.
const (
	ReasonNotFound        = "not_found"
	ReasonNoCommits       = "no_commits"
	ReasonDirty           = "dirty"
	ReasonPartlyRestored  = "partly_restored"
	ReasonMasterDown      = "master_down"
	ReasonSourceBound     = "source_bound"
	ReasonInvalidOption   = "invalid_option"
	ReasonUncommitted     = "uncommitted"
	ReasonMountsInUse     = "mounts_in_use"
	ReasonDiverged        = "diverged"
	ReasonPermission      = "permission"
	ReasonNothingToCommit = "nothing_to_commit"
	ReasonHookFailed      = "hook_failed"
)

// reasonFor returns the Reason for the first typed dotmesh error in
// err's chain, or nil when there is none.
func reasonFor(err error) *Reason {
	var (
		nf *dotmesh.NotFoundError
		nc *dotmesh.NoCommitsError
		de *dotmesh.DirtyError
		pr *dotmesh.PartlyRestoredError
		md *dotmesh.MasterDownError
		sb *dotmesh.SourceBoundError
		io *dotmesh.InvalidOptionError
		ue *dotmesh.UncommittedError
		mu *dotmesh.MountsInUseError
		dv *dotmesh.DivergedError
		pe *dotmesh.PermissionError
		nt *dotmesh.NothingToCommitError
		he *dotmesh.HookError
	)
	switch {
	case errors.As(err, &pr): // first: it may wrap another typed error
		r := &Reason{Type: ReasonPartlyRestored, Namespace: pr.Dot.Namespace, Dot: pr.Dot.Name, Branch: pr.Branch, Commit: string(pr.Target)}
		if pr.Err != nil {
			_, cause := ErrorFor(pr.Err)
			r.Cause = &cause
		}
		return r
	case errors.As(err, &nf):
		return &Reason{Type: ReasonNotFound, Kind: nf.Kind, Name: nf.Name, Namespace: nf.Dot.Namespace, Dot: nf.Dot.Name}
	case errors.As(err, &nc):
		return &Reason{Type: ReasonNoCommits, Namespace: nc.Dot.Namespace, Dot: nc.Dot.Name, Branch: nc.Branch}
	case errors.As(err, &de):
		return &Reason{Type: ReasonDirty, Namespace: de.Dot.Namespace, Dot: de.Dot.Name, Branch: de.Branch, Where: de.Where, Bytes: de.Bytes}
	case errors.As(err, &md):
		return &Reason{Type: ReasonMasterDown, Namespace: md.Dot.Namespace, Dot: md.Dot.Name, Branch: md.Branch, Node: md.Node}
	case errors.As(err, &sb):
		return &Reason{Type: ReasonSourceBound, Dot: string(sb.Ref.Dot), Branch: sb.Ref.Branch, Subdot: sb.Subdot, Kind: sb.Kind}
	case errors.As(err, &io):
		return &Reason{Type: ReasonInvalidOption, Name: io.Option, Problem: io.Problem}
	case errors.As(err, &ue):
		return &Reason{Type: ReasonUncommitted, Namespace: ue.Dot.Namespace, Dot: ue.Dot.Name, Branch: ue.Branch, Bytes: ue.Bytes}
	case errors.As(err, &mu):
		return &Reason{Type: ReasonMountsInUse, Op: mu.Op, Users: mu.Users}
	case errors.As(err, &dv):
		return &Reason{Type: ReasonDiverged, Namespace: dv.Dot.Namespace, Dot: dv.Dot.Name, Branch: dv.Branch, Commit: string(dv.Common), Start: string(dv.Start), Head: string(dv.Head)}
	case errors.As(err, &nt):
		return &Reason{Type: ReasonNothingToCommit, Namespace: nt.Dot.Namespace, Dot: nt.Dot.Name, Branch: nt.Branch, Commit: string(nt.Head)}
	case errors.As(err, &he):
		return &Reason{Type: ReasonHookFailed, Namespace: he.Dot.Namespace, Dot: he.Dot.Name, Op: he.Stage, Name: he.Hook, Problem: he.Problem}
	case errors.As(err, &pe):
		r := &Reason{Type: ReasonPermission, User: pe.User, Op: pe.Action, Need: pe.Need, Have: pe.Have, ReadOnly: pe.ReadOnlyKey}
		if pe.Dot != nil {
			r.Namespace, r.Dot = pe.Dot.Namespace, pe.Dot.Name
		}
		return r
	}
	return nil
}

// Err rebuilds the typed dotmesh error r describes, or returns nil for a
// Type this client does not know.
func (r *Reason) Err() error {
	if r == nil {
		return nil
	}
	dot := dotmesh.DotName{Namespace: r.Namespace, Name: r.Dot}
	switch r.Type {
	case ReasonNotFound:
		return &dotmesh.NotFoundError{Kind: r.Kind, Name: r.Name, Dot: dot}
	case ReasonNoCommits:
		return &dotmesh.NoCommitsError{Dot: dot, Branch: r.Branch}
	case ReasonDirty:
		return &dotmesh.DirtyError{Dot: dot, Branch: r.Branch, Where: r.Where, Bytes: r.Bytes}
	case ReasonPartlyRestored:
		e := &dotmesh.PartlyRestoredError{Dot: dot, Branch: r.Branch, Target: dotmesh.CommitID(r.Commit)}
		if r.Cause != nil {
			e.Err = r.Cause.remote()
		}
		return e
	case ReasonMasterDown:
		return &dotmesh.MasterDownError{Dot: dot, Branch: r.Branch, Node: r.Node}
	case ReasonSourceBound:
		return &dotmesh.SourceBoundError{Ref: dotmesh.BranchRef{Dot: dotmesh.DotID(r.Dot), Branch: r.Branch}, Subdot: r.Subdot, Kind: r.Kind}
	case ReasonInvalidOption:
		return &dotmesh.InvalidOptionError{Option: r.Name, Problem: r.Problem}
	case ReasonUncommitted:
		return &dotmesh.UncommittedError{Dot: dot, Branch: r.Branch, Bytes: r.Bytes}
	case ReasonMountsInUse:
		return &dotmesh.MountsInUseError{Op: r.Op, Users: r.Users}
	case ReasonDiverged:
		return &dotmesh.DivergedError{Dot: dot, Branch: r.Branch, Common: dotmesh.CommitID(r.Commit), Start: dotmesh.CommitID(r.Start), Head: dotmesh.CommitID(r.Head)}
	case ReasonNothingToCommit:
		return &dotmesh.NothingToCommitError{Dot: dot, Branch: r.Branch, Head: dotmesh.CommitID(r.Commit)}
	case ReasonHookFailed:
		return &dotmesh.HookError{Dot: dot, Stage: r.Op, Hook: r.Name, Problem: r.Problem}
	case ReasonPermission:
		e := &dotmesh.PermissionError{User: r.User, Action: r.Op, Need: r.Need, Have: r.Have, ReadOnlyKey: r.ReadOnly}
		if r.Dot != "" || r.Namespace != "" {
			e.Dot = &dot
		}
		return e
	}
	return nil
}

// remote rebuilds a Reason's cause: its message, sentinel and type.
func (e *Error) remote() *RemoteError {
	return &RemoteError{Message: e.Error, Code: e.Code, Peer: e.Peer, Reason: e.Reason}
}
