package dotmesh

import (
	"context"
	"fmt"
)

// CapacityReporter is an optional capability: how much room the
// backend's storage has left for new data. It is read when asked (a CSI
// GetCapacity), so it must be cheap and change nothing. What "left"
// means is the backend's to say in its documentation (dump: the file
// system's free bytes under the store; zfs: the root dataset's
// available bytes; btrfs: the file system's own free estimate).
type CapacityReporter interface {
	Capacity(ctx context.Context) (Capacity, error)
}

// Capacity is the room a backend has left, as Node.Capacity reports it.
type Capacity struct {
	// Backend names the backend.
	Backend string `json:"backend"`
	// AvailableBytes is the room for new data; TotalBytes the size of
	// the storage it is part of (0 when the backend cannot tell).
	AvailableBytes int64 `json:"available_bytes"`
	TotalBytes     int64 `json:"total_bytes"`
	// SizeLimits says whether the backend can bound a branch's size
	// (it is a VolumeSizer). Set by Node.Capacity.
	SizeLimits bool `json:"size_limits"`
}

// VolumeSizer is an optional capability of backends that can bound the
// size of a branch's working state (zfs: refquota; btrfs: a qgroup
// limit), so that writing past it fails with EDQUOT or ENOSPC. The limit
// belongs to the branch: it stays through Rollback (also when that
// replaces the working state), and a branch made from a commit starts
// with none. Commits do not count against it.
type VolumeSizer interface {
	// SetSize bounds b's working state to bytes; 0 removes the bound.
	// bytes is not negative. ErrNotFound if b has no working state.
	SetSize(ctx context.Context, b BranchRef, bytes int64) error
	// Size returns b's bound, 0 when it has none.
	Size(ctx context.Context, b BranchRef) (int64, error)
}

// Capacity reports the room left in a backend's storage (the node's
// default backend when name is empty). ErrNotSupported when the backend
// cannot tell.
func (n *Node) Capacity(ctx context.Context, name string) (Capacity, error) {
	if name == "" {
		name = n.def
	}
	be, ok := n.backends[name]
	if !ok {
		return Capacity{}, fmt.Errorf("%w: backend %q does not run on this node", ErrNotFound, name)
	}
	cr, ok := be.(CapacityReporter)
	if !ok {
		return Capacity{}, fmt.Errorf("%w: backend %s cannot tell its free space", ErrNotSupported, name)
	}
	c, err := cr.Capacity(ctx)
	if err != nil {
		return Capacity{}, err
	}
	c.Backend = name
	_, c.SizeLimits = be.(VolumeSizer)
	return c, nil
}

// sizer resolves a branch whose working state is on this node and the
// VolumeSizer of its dot's backend.
func (n *Node) sizer(ctx context.Context, name DotName, branch string) (*Dot, *Branch, VolumeSizer, error) {
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, nil, nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, nil, nil, err
	}
	vs, ok := be.(VolumeSizer)
	if !ok { // said first: no node could bound it
		return nil, nil, nil, fmt.Errorf("%w: dot %s is on the %s backend, which cannot bound a branch's size", ErrNotSupported, name, d.Backend)
	}
	if !n.place.local(b) {
		return nil, nil, nil, fmt.Errorf("%w: the working state of %s@%s is on node %s; ask that node", ErrUnavailable, name, b.Name, b.Master)
	}
	return d, b, vs, nil
}

// BranchSize returns the size bound of a branch's working state (the
// current branch when branch is empty), 0 when it has none.
// ErrNotSupported when the dot's backend cannot bound sizes.
func (n *Node) BranchSize(ctx context.Context, name DotName, branch string) (int64, error) {
	_, b, vs, err := n.sizer(ctx, name, branch)
	if err != nil {
		return 0, err
	}
	return vs.Size(ctx, b.Ref())
}

// SetBranchSize bounds a branch's working state to bytes (0 removes the
// bound); see VolumeSizer. ErrNotSupported when the dot's backend cannot.
func (n *Node) SetBranchSize(ctx context.Context, name DotName, branch string, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("%w: size %d is negative", ErrInvalidArgument, bytes)
	}
	d, _, _, err := n.sizer(ctx, name, branch)
	if err != nil {
		return err
	}
	defer n.lockDot(d.ID)()
	// Read again under the lock: the branch may have moved meanwhile.
	d, b, vs, err := n.sizer(ctx, name, branch)
	if err != nil {
		return err
	}
	if err := n.place.checkMaster(d, b); err != nil {
		return err
	}
	if err := vs.SetSize(ctx, b.Ref(), bytes); err != nil {
		return err
	}
	n.log.InfoContext(ctx, "branch size bound set", "dot", name.String(), "branch", b.Name, "bytes", bytes)
	return nil
}
