package dotmesh

import (
	"context"
	"time"
)

// inodeID is what proves a file unchanged between two trees of one
// lineage (InodeKeeper): its inode number and its ctime.
type inodeID struct {
	ino   uint64
	ctime int64 // ns since the epoch
}

// inodeProofMargin is how much older than the older commit a file's ctime
// must be for the proof to hold. Kernels stamp ctime from a coarse clock
// (a tick of up to 10 ms; OpenZFS on Linux and btrfs both), so a write
// just after the older snapshot may keep the ctime it had in it; any
// write after the snapshot is stamped no earlier than the snapshot's time
// less a tick, and Commit.Time is taken before the snapshot. Ten ticks
// leave room for clock adjustments. Where stamps are whole seconds
// (zfs-fuse shows no nanoseconds), a second more: see proofMargin.
const inodeProofMargin = 100 * time.Millisecond

// proofMargin is inodeProofMargin, plus a second when every ctime of both
// trees is a whole second: the filesystem truncates stamps to seconds.
func proofMargin(a, b *commitTree) time.Duration {
	for _, t := range []*commitTree{a, b} {
		for _, id := range t.ids {
			if id.ctime%int64(time.Second) != 0 {
				return inodeProofMargin
			}
		}
	}
	return inodeProofMargin + time.Second
}

// maxInodeProofWalk bounds the parent walk that finds whether one commit
// descends from the other.
const maxInodeProofWalk = 1000

// proveByInodes lets sameEntry take equal inode ids of a and b as proof
// that a file is unchanged, when be keeps inodes and one of the commits
// fc, tc descends from the other on this node: then both trees are
// states of one filesystem, and any write between them happened after
// the older snapshot, so it set a ctime no earlier than that snapshot.
// Branches are left out: a write on one just after the fork may share
// the forked file's coarse ctime. With live set, b is that branch's
// working state, which descends from its head: fc must be the head or
// an ancestor of it, no restore be under way (it replaces the working
// state) and the working state be this node's (elsewhere it may be an
// older one).
func (n *Node) proveByInodes(ctx context.Context, d *Dot, be StorageBackend, a, b *commitTree, fc, tc *Commit, live *Branch) error {
	ik, ok := be.(InodeKeeper)
	if !ok || !ik.KeepsInodes() || fc == nil || a.ids == nil || b.ids == nil {
		return nil
	}
	if live != nil {
		if tc != nil || live.Head == "" || live.Restoring != "" || live.Master != n.self {
			return nil
		}
		var err error
		if tc, err = n.reg.commit(ctx, d.ID, live.Head); err != nil || tc == nil {
			return err
		}
	}
	if tc == nil {
		return nil
	}
	older, err := n.ancestorOf(ctx, d, fc, tc)
	if err != nil || older == nil || live != nil && older.ID != fc.ID {
		return err
	}
	before := older.Time.Add(-proofMargin(a, b)).UnixNano()
	a.proof, b.proof = b, a
	a.proofBefore, b.proofBefore = before, before
	return nil
}

// ancestorOf returns whichever of x and y the other descends from (either
// when they are one commit), or nil.
func (n *Node) ancestorOf(ctx context.Context, d *Dot, x, y *Commit) (*Commit, error) {
	if x.ID == y.ID {
		return x, nil
	}
	for _, p := range [2][2]*Commit{{x, y}, {y, x}} {
		old, c := p[0], p[1]
		for i := 0; i < maxInodeProofWalk && c.Parent != "" && !c.Pruned; i++ {
			if c.Parent == old.ID {
				return old, nil
			}
			parent, err := n.reg.commit(ctx, d.ID, c.Parent)
			if err != nil {
				return nil, err
			}
			if parent == nil {
				break // not on this node: nothing proven that way
			}
			c = parent
		}
	}
	return nil, nil
}

// sameByInodes says whether the file at p is proven unchanged between a
// and b by its inode id (see proveByInodes).
func sameByInodes(a, b *commitTree, p string) bool {
	if a.proof != b {
		return false
	}
	ia, ok := a.ids[p]
	if !ok {
		return false
	}
	ib, ok := b.ids[p]
	return ok && ia == ib && ia.ctime < a.proofBefore
}
