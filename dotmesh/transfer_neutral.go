//go:build !dmlight

package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// Every received commit is stored on a hidden per-branch receiving
// storage "_recv-<branch>", which then holds the data of the received
// commits (Commit.Branch names it; a commit's data may live on another
// branch's storage) and is never listed as a branch.
//
// Neutral transfers stream the commit's tree from the backend's records
// (dump), its commit directory (btrfs) or a scratch branch restored from
// it (zfs); the receiver writes the tree into the working state of the
// receiving storage and commits it there with the SAME commit id. To a
// peer that advertises TransferState.AcceptsNeutralBase (a bucket, a
// node of this version) a commit whose base the peer holds goes as a
// delta stream against it.
// Streams are in the format of package transport/neutral.

// sendNeutral writes commit c as a neutral stream: a delta against base
// when base is set (the receiver holds it), its changed files as patches
// against base's when patch is set, else the whole tree.
func (n *Node) sendNeutral(ctx context.Context, d *Dot, be StorageBackend, c, base *Commit, patch bool, w io.Writer) error {
	if InProcessStream(ctx) {
		w = neutral.UncheckedWriter(w)
	}
	if base != nil {
		return n.sendNeutralDelta(ctx, d, be, base, c, patch, w)
	}
	// Where the backend knows the tree and streams its files (dump), or
	// the commit is a directory already (btrfs), nothing is restored.
	if _, ok := be.(TreeFileOpener); ok {
		t, err := n.openTree(ctx, d, be, c)
		if err != nil {
			return err
		}
		defer t.close()
		sw, err := neutral.NewWriter(w)
		if err != nil {
			return err
		}
		var es []neutral.Entry
		for i := range t.entries {
			if e, ok := neutralEntry(&t.entries[i]); ok {
				es = append(es, e)
			}
		}
		slices.SortFunc(es, func(a, b neutral.Entry) int { return neutral.ComparePaths(a.Path, b.Path) })
		return writeNeutral(sw, t, es, nil)
	}
	if cv, ok := be.(CommitViewer); ok {
		dir, err := cv.CommitDir(ctx, c.Ref())
		if err != nil {
			return err
		}
		return neutral.Write(dir, w)
	}
	dir, cleanup, err := n.scratchCopy(ctx, d, be, c, "_send-")
	if err != nil {
		return fmt.Errorf("restoring commit %s to send it: %w", c.ID, err)
	}
	defer cleanup()
	return neutral.Write(dir, w)
}

// sendNeutralDelta writes c as a delta against base: the paths the tree
// comparison finds changed (content ids or inode proofs spare reading
// unchanged files), and those whose mtime alone changed, which Diff
// ignores but a receiver's tree must match. With patch, a changed file
// that was a file in base too goes as a patch against it.
func (n *Node) sendNeutralDelta(ctx context.Context, d *Dot, be StorageBackend, base, c *Commit, patch bool, w io.Writer) error {
	a, err := n.openTree(ctx, d, be, base)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := n.openTree(ctx, d, be, c)
	if err != nil {
		return err
	}
	defer b.close()
	if err := n.proveByInodes(ctx, d, be, a, b, base, c, nil); err != nil {
		return err
	}
	changed := map[string]bool{}
	var es []neutral.Entry
	err = compareTrees(ctx, a, b, nil, func(ch treeChange) (bool, error) {
		changed[ch.path()] = true
		if ch.new != nil {
			if e, ok := neutralEntry(ch.new); ok {
				es = append(es, e)
				return true, nil
			}
		}
		if ch.old != nil {
			es = append(es, neutral.Entry{Kind: neutral.KindRemoved, Path: ch.old.Path})
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("comparing commit %s with %s: %w", c.ID, base.ID, err)
	}
	for i := range b.entries {
		e := &b.entries[i]
		j, ok := a.index[e.Path]
		if !ok || changed[e.Path] || neutral.ClampTime(a.entries[j].ModTime).Equal(neutral.ClampTime(e.ModTime)) {
			continue
		}
		if ne, ok := neutralEntry(e); ok {
			es = append(es, ne)
		}
	}
	sw, err := neutral.NewDeltaWriter(w, string(base.ID))
	if err != nil {
		return err
	}
	var from *commitTree
	if patch {
		from = a
	}
	return writeNeutral(sw, b, neutral.SortDelta(es), from)
}

// writeNeutral writes es, in stream order, with the files' bytes from t,
// and closes sw. With base set (a delta's), a file that base holds as a
// file too, both big enough, goes as a patch against base's.
func writeNeutral(sw *neutral.Writer, t *commitTree, es []neutral.Entry, base *commitTree) error {
	for _, e := range es {
		var content io.ReadCloser
		if e.Kind == neutral.KindFile {
			open := t.opener()
			if old := base.file(e.Path); old != nil && old.Size >= neutral.MinPatchSize && e.Size >= neutral.MinPatchSize {
				bopen := base.opener()
				err := sw.AddPatch(e, func() (io.ReadCloser, error) { return bopen(e.Path) }, func() (io.ReadCloser, error) { return open(e.Path) })
				if err != nil {
					return fmt.Errorf("sending %s: %w", e.Path, err)
				}
				continue
			}
			var err error
			if content, err = open(e.Path); err != nil {
				return fmt.Errorf("reading %s: %w", e.Path, err)
			}
		}
		err := sw.Add(e, content)
		if content != nil {
			content.Close()
		}
		if err != nil {
			return err
		}
	}
	return sw.Close()
}

// neutralEntry is e as a neutral stream carries it; false for what a
// stream does not carry.
func neutralEntry(e *TreeEntry) (neutral.Entry, bool) {
	ne := neutral.Entry{Path: e.Path, Mode: e.Mode.Perm(), MTime: neutral.ClampTime(e.ModTime)}
	switch {
	case e.Mode.IsDir():
		ne.Kind = neutral.KindDir
	case e.Mode.IsRegular():
		ne.Kind, ne.Size = neutral.KindFile, e.Size
	case e.Mode&fs.ModeSymlink != 0:
		ne.Kind, ne.Target = neutral.KindSymlink, e.Target
	default:
		return ne, false
	}
	return ne, true
}

// receiveNeutral writes the tree of a neutral stream into the working
// state of c's receiving storage and commits it there. A delta (base set)
// is applied to base's tree, from this node's own copy of base: the wire
// carries the change only. The working state is scratch until the
// commit: a failed or crashed receive leaves no commit, and the next one
// empties it first (or finds it not at base).
func (n *Node) receiveNeutral(ctx context.Context, t *transferTarget, c Commit, base *Commit, r io.Reader) (map[string]string, error) {
	tmp := BranchRef{Dot: t.dot.ID, Branch: c.Branch}
	var baseRef *CommitRef
	if base != nil {
		ref := base.Ref()
		baseRef = &ref
	}
	// A delta applies to a working state at base as it is: the one the
	// receiving storage has when it is still at base (base is the commit
	// received there last), or one the backend makes from base (a clone,
	// or a tree its change cache vouches for, so that the commit reads
	// the changed files only). Otherwise base's tree is written.
	atBase := false
	dir, err := t.be.SubdotPath(ctx, tmp, RootSubdot)
	if err != nil {
		if err := t.be.CreateBranch(ctx, tmp, baseRef); err != nil {
			return nil, fmt.Errorf("making a working state to receive into: %w", err)
		}
		if dir, err = t.be.SubdotPath(ctx, tmp, RootSubdot); err != nil {
			return nil, err
		}
		atBase = base != nil
	} else if base != nil && base.Branch == tmp.Branch {
		u, err := dirtiness(ctx, t.be, tmp, baseRef)
		atBase = err == nil && !u.Dirty
	}
	if InProcessStream(ctx) {
		r = neutral.UncheckedReader(r)
	}
	if !atBase {
		if err := emptyDir(dir); err != nil {
			return nil, fmt.Errorf("clearing the receiving working state: %w", err)
		}
		if base != nil {
			err = n.writeBaseTree(ctx, t, base, dir)
		}
	}
	var sink ChunkSink
	detach := func() {}
	if cs, ok := t.be.(ChunkStager); ok && err == nil && ChunksWanted(ctx) {
		if sink, err = cs.StageChunks(ctx, c.Ref()); err != nil {
			return nil, fmt.Errorf("taking the received chunks: %w", err)
		}
		defer sink.Release()
		detach = attachChunkSink(ctx, sink)
		defer detach()
	}
	switch {
	case err != nil:
	case base == nil:
		err = neutral.Read(r, dir)
	default:
		err = neutral.ApplyDelta(r, dir, func(id string) error {
			if id != string(base.ID) {
				return fmt.Errorf("%w: neutral delta: against commit %q, where the sender named %s", ErrCorrupt, id, base.ID)
			}
			return nil
		})
	}
	if err != nil {
		_ = emptyDir(dir) // a damaged stream leaves nothing behind
		if errors.Is(err, neutral.ErrCorrupt) {
			err = corruptStream{err}
		}
		return nil, err
	}
	if sink != nil {
		// The stream is read: no more offers. What the sink stored is in
		// the store before the commit looks for it.
		detach()
		if err := sink.Flush(); err != nil {
			return nil, fmt.Errorf("storing the received chunks: %w", err)
		}
	}
	info, err := t.be.Commit(ctx, c.Ref())
	if err != nil {
		return nil, fmt.Errorf("committing the received tree: %w", err)
	}
	return info, nil
}

// writeBaseTree writes the tree of commit base, which this node holds,
// into the empty directory dir, as its neutral stream would.
func (n *Node) writeBaseTree(ctx context.Context, t *transferTarget, base *Commit, dir string) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(n.sendNeutral(WithInProcessStream(ctx), t.dot, t.be, base, nil, false, pw))
	}()
	err := neutral.Read(neutral.UncheckedReader(pr), dir)
	pr.CloseWithError(errors.New("base tree written")) // ends the writer if Read stopped early
	<-done
	if err != nil {
		return fmt.Errorf("writing the tree of base commit %s to apply a delta to: %w", base.ID, err)
	}
	return nil
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

// opener is how a stream reads t's files: without holding one whole in
// memory where the backend can (TreeFileOpener).
func (t *commitTree) opener() func(path string) (io.ReadCloser, error) {
	if t.stream != nil {
		return t.stream
	}
	return t.open
}

// file returns t's regular file at p, or nil (also for a nil t).
func (t *commitTree) file(p string) *TreeEntry {
	if t == nil {
		return nil
	}
	i, ok := t.index[p]
	if !ok || !t.entries[i].Mode.IsRegular() {
		return nil
	}
	return &t.entries[i]
}
