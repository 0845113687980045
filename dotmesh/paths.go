package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Stable paths. A branch's working tree is a directory of its own, so a
// path printed for the current branch would go on showing that branch
// after a checkout. With Options.PathsDir set, the node keeps one symlink
// per dot, PathsDir/NAMESPACE/DOT, pointing at the working tree of the
// dot's current branch on this node; Path prints paths through it.
//
// The link is replaced with rename(2) of a fresh symlink, so a reader (or
// a crash) sees the old link or the new one, never none; NewNode points
// every link at its dot's current branch again and removes links of dots
// that are gone. A process that entered the tree through the link keeps
// the directory it entered (the kernel resolves the link once), so it
// still sees the old branch: CheckoutReport names such processes.

// Path returns a path of a subdot's working directory. Without a branch
// in v it is the stable path (PathsDir/NAMESPACE/DOT/SUBDOT; the link
// itself for RootSubdot), which shows whatever branch is checked out; with
// a branch, or without Options.PathsDir, it is that branch's own
// directory, as SubdotPath. Either way the subdot is made if missing.
func (n *Node) Path(ctx context.Context, v VolumeName) (string, error) {
	if n.paths == "" || v.Branch != "" {
		return n.SubdotPath(ctx, v)
	}
	for attempt := 0; ; attempt++ {
		d, err := n.Dot(ctx, v.Dot)
		if err != nil {
			return "", err
		}
		cur := v
		cur.Branch = d.Current
		if _, err := n.SubdotPath(ctx, cur); err != nil {
			return "", err
		}
		unlock := n.lockDot(d.ID)
		d, _, err = n.reg.dot(ctx, d.ID)
		if err == nil && d.Current != cur.Branch && attempt < 3 {
			unlock() // checked out meanwhile: make the subdot there too
			continue
		}
		if err == nil {
			err = n.relinkLocked(ctx, d)
		}
		unlock()
		if err != nil {
			return "", err
		}
		link := n.linkPath(d.DotName())
		if v.SubdotOrDefault() == RootSubdot {
			return link, nil
		}
		return filepath.Join(link, v.SubdotOrDefault()), nil
	}
}

// linkPath is where the stable link of a dot lives. Names are validated
// ([A-Za-z0-9_-]), so it is always directly inside PathsDir/NAMESPACE.
func (n *Node) linkPath(name DotName) string {
	return filepath.Join(n.paths, name.Namespace, name.Name)
}

// relink points a dot's link at its current branch, taking the dot lock.
// Operations that change which directory the current branch has (a
// rename of the current branch) call it after their registry write.
func (n *Node) relink(ctx context.Context, id DotID) error {
	if n.paths == "" {
		return nil
	}
	defer n.lockDot(id)()
	d, _, err := n.reg.dot(ctx, id)
	if err != nil {
		return err
	}
	return n.relinkLocked(ctx, d)
}

// relinkLocked points d's link at the working tree of d's current branch
// when that tree is on this node, and removes the link otherwise (in a
// cluster, another node may hold the branch: Path moves it here and links
// again). The caller holds the dot lock.
func (n *Node) relinkLocked(ctx context.Context, d *Dot) error {
	return n.relinkTo(ctx, d, false)
}

// TreeLocator is an optional StorageBackend capability: TreePath returns
// the directory SubdotPath(b, RootSubdot) returns, without making the tree
// available there when it is not yet (zfs: without mounting a working
// state nobody has asked for).
//
// The stable path of a dot that a transfer creates is linked with it, so a
// node that only receives a dot leaves it unmounted: on zfs a mounted
// working state costs each later transfer into it two dirty checks (a
// snapshot, a send and a destroy each) and a switch that waits for an
// unmount and a mount. The link is there from the start; Path (`dm
// path`), SubdotPath and a checkout make the tree available behind it.
type TreeLocator interface {
	TreePath(b BranchRef) string
}

// relinkTo is relinkLocked; with lazy, a backend that is a TreeLocator
// is not asked to make the tree available.
func (n *Node) relinkTo(ctx context.Context, d *Dot, lazy bool) error {
	if n.paths == "" {
		return nil
	}
	b, _, err := n.reg.branch(ctx, d, d.Current)
	if err != nil {
		return err
	}
	return n.relinkBranch(ctx, d, b, lazy)
}

// relinkBranch is relinkTo with b, the record of d's current branch.
func (n *Node) relinkBranch(ctx context.Context, d *Dot, b *Branch, lazy bool) error {
	link := n.linkPath(d.DotName())
	if !n.place.local(b) {
		return removeLink(link)
	}
	be, err := n.backendOf(d)
	if err != nil {
		return err
	}
	if tl, ok := be.(TreeLocator); ok && lazy {
		return n.pointLink(link, tl.TreePath(b.Ref()))
	}
	root, err := be.SubdotPath(ctx, b.Ref(), RootSubdot)
	if err != nil {
		return fmt.Errorf("the working tree of %s@%s: %w", d.DotName(), b.Name, err)
	}
	return n.pointLink(link, root)
}

// pointLink makes link a symlink to target: a new symlink under a name no
// dot can have (names hold no '.'), renamed over the old one.
func (n *Node) pointLink(link, target string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	dir := filepath.Dir(link)
	if err := n.mkdirLinks(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, "."+filepath.Base(link)+".")
	if err != nil {
		return fmt.Errorf("making the stable path of %s: %w", link, err)
	}
	defer os.RemoveAll(tmp)
	// The symlink is made inside a private temp dir, so two switches of one
	// link never share a name, then moved out over the link.
	if err := os.Symlink(target, filepath.Join(tmp, "l")); err != nil {
		return fmt.Errorf("making the stable path of %s: %w", link, err)
	}
	if err := os.Rename(filepath.Join(tmp, "l"), link); err != nil {
		return fmt.Errorf("switching the stable path %s to %s: %w", link, target, err)
	}
	return nil
}

// mkdirLinks makes a namespace directory of PathsDir with PathsDir's own
// permissions (the daemon makes it 0700, or 0711 to open working trees to
// other users).
func (n *Node) mkdirLinks(dir string) error {
	st, err := os.Stat(n.paths)
	if err != nil {
		return fmt.Errorf("the directory of stable paths: %w", err)
	}
	if err := os.Mkdir(dir, st.Mode().Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("making %s: %w", dir, err)
	}
	return os.Chmod(dir, st.Mode().Perm())
}

func removeLink(link string) error {
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the stable path %s: %w", link, err)
	}
	return nil
}

// dropLink removes the link of a deleted dot; a failure is only logged
// (the next start removes it).
func (n *Node) dropLink(name DotName) {
	if n.paths == "" {
		return
	}
	if err := removeLink(n.linkPath(name)); err != nil {
		n.log.Warn("removing the stable path of a deleted dot", "dot", name.String(), "err", err)
	}
}

// relinkAll points every dot's link at its current branch and removes
// what is not a dot's link (links of deleted dots, temp dirs of a switch
// cut off by a crash), at start. A TreeLocator backend is not asked to
// make the trees available: a working state nobody has asked for (a dot
// that only receives transfers) stays unmounted across restarts, and
// what was mounted the backend mounts again itself.
func (n *Node) relinkAll(ctx context.Context) error {
	if n.paths == "" {
		return nil
	}
	if err := os.MkdirAll(n.paths, 0o700); err != nil {
		return fmt.Errorf("the directory of stable paths: %w", err)
	}
	dots, err := n.reg.dots(ctx)
	if err != nil {
		return err
	}
	// Every branch record in one read, not a Get per dot: a cluster
	// node runs this every sync pass (30 s), and on etcd 1,001 Gets kept
	// a node busy for seconds beside the listings. The records are as
	// fresh as dots (read before the locks, as they were): a checkout or
	// move between the reads and a dot's lock is pointed right again by
	// the next pass.
	branches, err := groupByDot[Branch](ctx, n.store, branchesPrefix)
	if err != nil {
		return err
	}
	want := make(map[string]bool, len(dots))
	for _, d := range dots {
		want[n.linkPath(d.DotName())] = true
		var cur *Branch
		for _, b := range branches[d.ID] {
			if b.Name == d.Current {
				cur = b
			}
		}
		unlock := n.lockDot(d.ID)
		if cur != nil {
			err = n.relinkBranch(ctx, d, cur, true)
		} else { // made after the read: its own record
			err = n.relinkTo(ctx, d, true)
		}
		unlock()
		if err != nil {
			// One dot's storage missing must not keep the node down.
			n.log.WarnContext(ctx, "pointing the stable path at the current branch", "dot", d.DotName().String(), "err", err)
		}
	}
	nss, err := os.ReadDir(n.paths)
	if err != nil {
		return fmt.Errorf("the directory of stable paths: %w", err)
	}
	for _, ns := range nss {
		dir := filepath.Join(n.paths, ns.Name())
		if !ns.IsDir() {
			n.removeStray(dir)
			continue
		}
		es, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("the directory of stable paths: %w", err)
		}
		for _, e := range es {
			if p := filepath.Join(dir, e.Name()); !want[p] {
				n.removeStray(p)
			}
		}
		os.Remove(dir) // when empty
	}
	return nil
}

// removeStray removes an entry of PathsDir that is no dot's link: a link
// of a deleted dot, or the temp dir of a switch cut off by a crash. Only
// those are ever made there; anything else is left alone and logged.
func (n *Node) removeStray(p string) {
	st, err := os.Lstat(p)
	switch {
	case err != nil:
		return
	case st.Mode()&fs.ModeSymlink != 0:
		err = os.Remove(p)
	case st.IsDir() && strings.HasPrefix(filepath.Base(p), "."):
		err = os.RemoveAll(p) // holds at most one symlink, never followed
	default:
		err = errors.New("not made by dotmesh; left alone")
	}
	if err != nil {
		n.log.Warn("removing a stale stable path", "path", p, "err", err)
	}
}
