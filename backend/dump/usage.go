package dump

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Usage implements dotmesh.StorageBackend by stat alone: a file counts as
// unchanged when it still matches the branch's synced manifest by stat
// (size, mtime, ctime, inode) and that entry has head's content. Added and
// changed files count their size, deleted files their old size; changes
// of mode, symlink target or the set of directories make the branch dirty
// without adding bytes. Owners and directory mtimes are not compared.
//
// A file whose inode, size and mtime are unchanged but whose ctime moved
// (chmod, chown) counts as dirty without bytes: this is only an estimate,
// the commit reads it again to be sure.
//
// Before the first commit (head nil) the branch is dirty when the tree
// holds any file or symlink; empty directories, such as subdots that were
// only mounted, do not count.
func (b *Backend) Usage(ctx context.Context, br dotmesh.BranchRef, head *dotmesh.CommitRef) (dotmesh.Usage, error) {
	var u dotmesh.Usage
	if head == nil && b.empties.empty(b.treeDir(br), ctx.Value(usageBatch{b}) != nil) {
		return u, nil // what the walk below finds in an empty tree, remembered (empties.go)
	}
	if err := b.needTree(br); err != nil {
		return u, err
	}
	if head == nil {
		err := walkTree(b.treeDir(br), func(c *Entry) error {
			switch c.Type {
			case TypeFile:
				u.Size += c.Size
				u.Dirty = true
			case TypeSymlink:
				u.Dirty = true
			}
			return nil
		})
		if err != nil {
			return u, fmt.Errorf("usage of %s: %w", br, err)
		}
		u.DirtyBytes = u.Size
		return u, nil
	}

	defer b.useStore()()
	_, root, err := b.readRecord(*head)
	if err != nil {
		return u, err
	}
	// The walk, head's manifest and the synced one go along together in
	// tree order (see manifestCursor): a commit's check of a tree of
	// 500,000 files held all three whole, indexed by path, before.
	hit, err := iterManifest(b.store, root)
	if err != nil {
		return u, fmt.Errorf("usage of %s: %w", br, err)
	}
	want, err := newManifestCursor(hit)
	if err != nil {
		return u, fmt.Errorf("usage of %s: %w", br, err)
	}
	var cache *manifestCursor // nil: the tree was last synced with head itself
	if sroot, ok := b.readSynced(br); !ok || sroot != root {
		cache = b.syncedCursor(ctx, br)
	}
	// sourcesUsage compares the sources' dump files with head's entries;
	// an error here is its to report.
	dumps := map[string]*Entry{}
	if srcs, drvs, err := b.liveSources(br); err == nil {
		for i := range srcs {
			dumps[srcs[i].Subdot+"/"+drvs[i].FileName()] = nil
		}
	}
	deleted := func(t *Entry) {
		u.Dirty = true
		u.DirtyBytes += t.Size
	}
	err = walkTree(b.treeDir(br), func(c *Entry) error {
		if c.Type == TypeFile {
			u.Size += c.Size
		}
		t, err := want.seek(c.Path, deleted)
		if err != nil {
			return err
		}
		if c.Type == 0 {
			return nil // never committed, so not a difference a commit would record
		}
		if _, ok := dumps[c.Path]; ok && t != nil {
			kept := *t
			dumps[c.Path] = &kept
		}
		switch {
		case t == nil || t.Type != c.Type:
			u.Dirty = true
			u.DirtyBytes += c.Size
			if t != nil {
				u.DirtyBytes += t.Size
			}
		case c.Type == TypeSymlink:
			if c.Target != t.Target {
				u.Dirty = true
			}
		case c.Type == TypeDir:
			if c.Mode != t.Mode {
				u.Dirty = true
			}
		default: // file
			s := t
			if cache != nil {
				s = cache.seekOrDrop(ctx, b, br, c.Path)
			}
			switch {
			case statMatches(s, c) && chunksEqual(s.Chunks, t.Chunks):
				if c.Mode != t.Mode {
					u.Dirty = true
				}
			case metaOnlyChange(s, c) && chunksEqual(s.Chunks, t.Chunks):
				// Same inode, size and mtime, new ctime: a chmod or
				// chown, most likely. Dirty, but no content bytes.
				u.Dirty = true
			default:
				u.Dirty = true
				u.DirtyBytes += c.Size
			}
		}
		return nil
	})
	if err == nil {
		err = want.drain(deleted)
	}
	if err != nil {
		return u, fmt.Errorf("usage of %s: %w", br, err)
	}
	return b.sourcesUsage(ctx, br, u, dumps) // see sources.go (dumps hold head's entries unless u is dirty)
}

// metaOnlyChange: the file kept inode, size and mtime since cached was
// recorded, only its ctime moved.
func metaOnlyChange(cached, cur *Entry) bool {
	return cached != nil && cached.Type == TypeFile && cur.Type == TypeFile &&
		cached.Inode != 0 && cached.Inode == cur.Inode &&
		cached.MTime == cur.MTime && cached.Size == cur.Size
}

// emptyDir tells whether dir is a directory (not a symlink to one) with no
// entries. A listing of a node's dots asks the usage of every dot, most of
// them empty before their first commit: an open, two getdents and a close
// cost a fraction of os.Lstat, os.Open (which stats and registers the
// descriptor with the poller) and Readdirnames. Any error says false, and
// the caller's scan reports it.
func emptyDir(dir string) bool {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var buf [512]byte
	for {
		n, err := unix.Getdents(fd, buf[:])
		if err != nil {
			return false
		}
		if n <= 0 {
			return true
		}
		names := make([]string, 0, 2)
		_, _, names = unix.ParseDirent(buf[:n], -1, names) // drops . and ..
		if len(names) > 0 {
			return false
		}
	}
}
