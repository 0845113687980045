package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// Every received commit is stored on a hidden per-branch receiving
// storage "_recv-<branch>", which then holds the data of the received
// commits (Commit.Branch names it; a commit's data may live on another
// branch's storage) and is never listed as a branch.
//
// Neutral transfers restore the commit into a scratch branch on the
// sender and stream its tree; the receiver writes the tree into the
// working state of the receiving storage and commits it there with the
// SAME commit id. Neutral streams are always complete trees, in the
// format of package transport/neutral.

func recvBranch(branch string) string {
	b := "_recv-" + branch
	if len(b) > 64 {
		b = b[:64]
	}
	return b
}

func (n *Node) sendNeutral(ctx context.Context, d *Dot, be StorageBackend, c *Commit, w io.Writer) error {
	dir, cleanup, err := n.scratchCopy(ctx, d, be, c, "_send-")
	if err != nil {
		return fmt.Errorf("restoring commit %s to send it: %w", c.ID, err)
	}
	defer cleanup()
	return neutral.Write(dir, w)
}

// scratchCopy restores commit c into a scratch branch named prefix plus
// random hex (a clone or snapshot on zfs and btrfs, so cheap) and returns
// its root directory and the function that deletes it. Reconcile removes
// a scratch branch left by a process that died before cleanup.
func (n *Node) scratchCopy(ctx context.Context, d *Dot, be StorageBackend, c *Commit, prefix string) (dir string, cleanup func(), err error) {
	tmp := BranchRef{Dot: d.ID, Branch: prefix + randomHex(8)}
	ref := c.Ref()
	if err := be.CreateBranch(ctx, tmp, &ref); err != nil {
		return "", nil, err
	}
	cleanup = func() { n.cleanupBranch(be, tmp) }
	if dir, err = be.SubdotPath(ctx, tmp, RootSubdot); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}

func (n *Node) receiveNeutral(ctx context.Context, t *transferTarget, c Commit, r io.Reader) (map[string]string, error) {
	tmp := BranchRef{Dot: t.dot.ID, Branch: c.Branch}
	dir, err := t.be.SubdotPath(ctx, tmp, RootSubdot)
	if err != nil {
		if err := t.be.CreateBranch(ctx, tmp, nil); err != nil {
			return nil, fmt.Errorf("making a working state to receive into: %w", err)
		}
		if dir, err = t.be.SubdotPath(ctx, tmp, RootSubdot); err != nil {
			return nil, err
		}
	}
	if err := emptyDir(dir); err != nil {
		return nil, fmt.Errorf("clearing the receiving working state: %w", err)
	}
	if err := neutral.Read(r, dir); err != nil {
		_ = emptyDir(dir) // a damaged stream leaves nothing behind
		if errors.Is(err, neutral.ErrCorrupt) {
			err = corruptStream{err}
		}
		return nil, err
	}
	info, err := t.be.Commit(ctx, c.Ref())
	if err != nil {
		return nil, fmt.Errorf("committing the received tree: %w", err)
	}
	return info, nil
}

// corruptStream is a damaged neutral stream's error, which is this
// package's ErrCorrupt too; its text stays the stream's.
type corruptStream struct{ error }

func (e corruptStream) Unwrap() []error { return []error{e.error, ErrCorrupt} }

func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
