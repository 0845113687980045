package bucketremote

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// Delta streams (package neutral's "DMD1"): a sender whose base commit
// the bucket holds sends only what changed (State sets
// AcceptsNeutralBase). SendCommit merges the delta into the base's
// stored tree: unchanged files keep their chunk lists, so only changed
// files are chunked and hashed. FetchCommit with a base compares two
// stored trees by their chunk lists and reads the blobs of changed
// files only.

// treeCursor reads a stored tree entry by entry, one ahead.
type treeCursor struct {
	ch     <-chan TreeEntry
	errc   <-chan error
	cur    *TreeEntry
	done   bool
	err    error
	cancel context.CancelFunc
}

func (r *Remote) openCursor(ctx context.Context, rec *CommitRecord) *treeCursor {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan TreeEntry, 64)
	errc := make(chan error, 1)
	go func() {
		defer close(ch)
		errc <- WalkTree(ctx, r.repo, rec, r.cfg.Parallel, func(te TreeEntry) error {
			select {
			case ch <- te:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return &treeCursor{ch: ch, errc: errc, cancel: cancel}
}

// peek returns the next entry, or nil at the end of the tree.
func (c *treeCursor) peek() (*TreeEntry, error) {
	if c.cur != nil || c.done {
		return c.cur, c.err
	}
	te, ok := <-c.ch
	if !ok {
		c.done, c.err = true, <-c.errc
		return nil, c.err
	}
	c.cur = &te
	return c.cur, nil
}

func (c *treeCursor) pop() { c.cur = nil }

// close stops the walk and waits for it.
func (c *treeCursor) close() {
	c.cancel()
	for range c.ch {
	}
}

// before reports whether the cursor's entry te comes before path p in
// walk order (p "" is the end of the tree).
func before(te *TreeEntry, p string) bool {
	return te != nil && (p == "" || neutral.ComparePaths(te.Path, p) < 0)
}

func isBelow(p, dir string) bool {
	return dir != "" && strings.HasPrefix(p, dir) && len(p) > len(dir) && p[len(dir)] == '/'
}

// treeDirs checks that a merged tree's entries each have their directory
// before them, as the tree encoding and neutral streams need.
type treeDirs []string

func (d *treeDirs) add(e *neutral.Entry) error {
	s := *d
	for len(s) > 0 && !isBelow(e.Path, s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	if parent := path.Dir(e.Path); parent != "." && (len(s) == 0 || s[len(s)-1] != parent) {
		return fmt.Errorf("%w: neutral delta: the directory of %q, %q, is in neither the base nor the delta", dotmesh.ErrCorrupt, e.Path, parent)
	}
	if e.Kind == neutral.KindDir {
		s = append(s, e.Path)
	}
	*d = s
	return nil
}

// mergeDelta reads a delta stream against base and hands out the new
// tree in order: its records to add (which chunks files), the base's
// unchanged entries to keep. A removal of a path base lacks, a record
// without its directory or a delta against another commit is ErrCorrupt.
func (r *Remote) mergeDelta(ctx context.Context, base *CommitRecord, data io.Reader,
	add func(neutral.Entry, io.Reader) error, keep func(TreeEntry) error) error {
	bt := r.openCursor(ctx, base)
	defer bt.close()
	var dirs treeDirs
	dropped := "" // a base path the delta removed or made a non-directory
	flush := func(p string) error {
		for {
			te, err := bt.peek()
			if err != nil || !before(te, p) {
				return err
			}
			bt.pop()
			if isBelow(te.Path, dropped) {
				continue
			}
			if err := dirs.add(&te.Entry); err != nil {
				return err
			}
			if err := keep(*te); err != nil {
				return err
			}
		}
	}
	err := neutral.ScanDelta(data, func(id string) error {
		if id != string(base.Commit.ID) {
			return fmt.Errorf("%w: neutral delta: against commit %q, where the sender named %s", dotmesh.ErrCorrupt, id, base.Commit.ID)
		}
		return nil
	}, func(e neutral.Entry, content io.Reader) error {
		if err := flush(e.Path); err != nil {
			return err
		}
		te, err := bt.peek()
		if err != nil {
			return err
		}
		had := te != nil && te.Path == e.Path
		if had {
			bt.pop()
		}
		if e.Kind != neutral.KindDir {
			dropped = e.Path
		}
		if e.Kind == neutral.KindRemoved {
			if !had {
				return fmt.Errorf("%w: neutral delta: removes %q, which base commit %s does not have", dotmesh.ErrCorrupt, e.Path, base.Commit.ID)
			}
			return nil
		}
		if err := dirs.add(&e); err != nil {
			return err
		}
		return add(e, content)
	})
	if err != nil {
		return err
	}
	return flush("")
}

// walkDelta calls fn with the delta from base to rec, in stream order:
// the entries of rec that are new or differ (chunk lists compare
// contents), and removals (KindRemoved) of base's paths that are gone,
// one for a whole removed directory.
func (r *Remote) walkDelta(ctx context.Context, base, rec *CommitRecord, fn func(TreeEntry) error) error {
	bt := r.openCursor(ctx, base)
	defer bt.close()
	dropped := ""
	removeBefore := func(p string) error {
		for {
			te, err := bt.peek()
			if err != nil || !before(te, p) {
				return err
			}
			bt.pop()
			if isBelow(te.Path, dropped) {
				continue
			}
			dropped = te.Path
			if err := fn(TreeEntry{Entry: neutral.Entry{Kind: neutral.KindRemoved, Path: te.Path}}); err != nil {
				return err
			}
		}
	}
	err := WalkTree(ctx, r.repo, rec, r.cfg.Parallel, func(te TreeEntry) error {
		if err := removeBefore(te.Path); err != nil {
			return err
		}
		old, err := bt.peek()
		if err != nil {
			return err
		}
		if old != nil && old.Path == te.Path {
			bt.pop()
			if sameTreeEntry(old, &te) {
				return nil
			}
		}
		if te.Kind != neutral.KindDir {
			dropped = te.Path // what base had below it is gone with it
		}
		return fn(te)
	})
	if err != nil {
		return err
	}
	return removeBefore("")
}

func sameTreeEntry(a, b *TreeEntry) bool {
	return a.Kind == b.Kind && a.Path == b.Path && a.Mode == b.Mode && a.MTime.Equal(b.MTime) &&
		a.Size == b.Size && a.Target == b.Target && slices.Equal(a.Chunks, b.Chunks)
}
