package backendtest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Entry is one node of a file tree: a regular file, a directory or a
// symlink. Ownership and times are not compared.
type Entry struct {
	// Mode holds the type (0, fs.ModeDir or fs.ModeSymlink) and the
	// permission bits; permission bits of symlinks are ignored.
	Mode   fs.FileMode
	Data   []byte // content of a regular file
	Target string // target of a symlink, never followed
}

// Tree maps slash-separated paths, relative to a root, to entries. Every
// directory, including empty ones, is listed; the root itself is not.
type Tree map[string]Entry

// File returns a regular file entry.
func File(perm fs.FileMode, data string) Entry {
	return Entry{Mode: perm & fs.ModePerm, Data: []byte(data)}
}

// Dir returns a directory entry.
func Dir(perm fs.FileMode) Entry { return Entry{Mode: fs.ModeDir | perm&fs.ModePerm} }

// Symlink returns a symlink entry.
func Symlink(target string) Entry { return Entry{Mode: fs.ModeSymlink, Target: target} }

// RandomFile returns a file entry of n pseudo-random (incompressible,
// reproducible per seed) bytes.
func RandomFile(perm fs.FileMode, n int, seed uint64) Entry {
	return Entry{Mode: perm & fs.ModePerm, Data: RandomBytes(n, seed)}
}

// RandomBytes returns n reproducible pseudo-random bytes.
func RandomBytes(n int, seed uint64) []byte {
	var s [32]byte
	for i := range 4 {
		s[i*8] = byte(seed >> (8 * i))
	}
	s[31] = 0xd0
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// Clone returns a deep copy, to derive a changed tree from another.
func (tr Tree) Clone() Tree {
	out := make(Tree, len(tr))
	for p, e := range tr {
		e.Data = slices.Clone(e.Data)
		out[p] = e
	}
	return out
}

// Merge adds other's entries to tr, replacing entries with the same path.
func (tr Tree) Merge(other Tree) Tree {
	for p, e := range other {
		tr[p] = e
	}
	return tr
}

// WriteTree creates the entries of tree under root (created if missing).
// Existing entries not in tree are left alone; an existing entry at a
// listed path is replaced unless both are directories (then only its mode
// changes). Missing parents are created 0755. Modes are set exactly,
// whatever the umask.
func WriteTree(t testing.TB, root string, tree Tree) {
	t.Helper()
	if err := writeTree(root, tree); err != nil {
		t.Fatalf("WriteTree(%s): %v", root, err)
	}
}

func writeTree(root string, tree Tree) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	paths := sortedPaths(tree)
	for _, p := range paths {
		if !fs.ValidPath(p) || p == "." {
			return fmt.Errorf("bad tree path %q", p)
		}
		e := tree[p]
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if fi, err := os.Lstat(full); err == nil && !(fi.IsDir() && e.Mode.IsDir()) {
			if err := os.RemoveAll(full); err != nil {
				return err
			}
		}
		switch e.Mode.Type() {
		case fs.ModeDir:
			// Writable until its children exist; the real mode is set below.
			if err := os.Mkdir(full, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
		case fs.ModeSymlink:
			if err := os.Symlink(e.Target, full); err != nil {
				return err
			}
		case 0:
			if err := os.WriteFile(full, e.Data, 0o600); err != nil {
				return err
			}
			if err := os.Chmod(full, e.Mode.Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported entry type %v", p, e.Mode.Type())
		}
	}
	// Directory modes last, deepest first, so 0500 dirs can get children.
	for _, p := range slices.Backward(paths) {
		if e := tree[p]; e.Mode.IsDir() {
			if err := os.Chmod(filepath.Join(root, filepath.FromSlash(p)), e.Mode.Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

// ReadTree reads the whole tree under root, without following symlinks.
func ReadTree(t testing.TB, root string) Tree {
	t.Helper()
	tr, err := readTree(root)
	if err != nil {
		t.Fatalf("ReadTree(%s): %v", root, err)
	}
	return tr
}

func readTree(root string) (Tree, error) {
	tr := Tree{}
	err := filepath.WalkDir(root, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if full == root {
			if !d.IsDir() {
				return fmt.Errorf("%s is not a directory", root)
			}
			return nil
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Mode: fi.Mode() & (fs.ModeType | fs.ModePerm)}
		switch fi.Mode().Type() {
		case fs.ModeDir:
		case fs.ModeSymlink:
			e.Mode = fs.ModeSymlink
			if e.Target, err = os.Readlink(full); err != nil {
				return err
			}
		case 0:
			if e.Data, err = os.ReadFile(full); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected file type %v", rel, fi.Mode().Type())
		}
		tr[filepath.ToSlash(rel)] = e
		return nil
	})
	return tr, err
}

// AssertTree fails t unless the tree under root is exactly want.
func AssertTree(t testing.TB, root string, want Tree) {
	t.Helper()
	if diffs := DiffTrees(ReadTree(t, root), want); len(diffs) > 0 {
		t.Errorf("tree %s differs from the expected one:\n  %s", root, strings.Join(diffs, "\n  "))
	}
}

// AssertSameTree fails t unless the trees under a and b are identical.
func AssertSameTree(t testing.TB, a, b string) {
	t.Helper()
	if diffs := DiffTrees(ReadTree(t, a), ReadTree(t, b)); len(diffs) > 0 {
		t.Errorf("tree %s differs from %s:\n  %s", a, b, strings.Join(diffs, "\n  "))
	}
}

// DiffTrees describes how got differs from want; nil when they are equal.
func DiffTrees(got, want Tree) []string {
	var diffs []string
	all := maps2set(got, want)
	for _, p := range all {
		g, gok := got[p]
		w, wok := want[p]
		switch {
		case !gok:
			diffs = append(diffs, fmt.Sprintf("%s: missing (want %s)", p, describeEntry(w)))
		case !wok:
			diffs = append(diffs, fmt.Sprintf("%s: unexpected %s", p, describeEntry(g)))
		case g.Mode.Type() != w.Mode.Type():
			diffs = append(diffs, fmt.Sprintf("%s: is %s, want %s", p, describeEntry(g), describeEntry(w)))
		case g.Mode.Type() != fs.ModeSymlink && g.Mode.Perm() != w.Mode.Perm():
			diffs = append(diffs, fmt.Sprintf("%s: mode %v, want %v", p, g.Mode, w.Mode))
		case g.Target != w.Target:
			diffs = append(diffs, fmt.Sprintf("%s: symlink to %q, want %q", p, g.Target, w.Target))
		case !bytes.Equal(g.Data, w.Data):
			diffs = append(diffs, fmt.Sprintf("%s: content %s, want %s", p, describeData(g.Data), describeData(w.Data)))
		}
	}
	return diffs
}

func describeEntry(e Entry) string {
	switch e.Mode.Type() {
	case fs.ModeDir:
		return fmt.Sprintf("directory %v", e.Mode)
	case fs.ModeSymlink:
		return fmt.Sprintf("symlink to %q", e.Target)
	}
	return fmt.Sprintf("file %v %s", e.Mode, describeData(e.Data))
}

func describeData(b []byte) string {
	if len(b) <= 40 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%d bytes sha256:%x", len(b), sha256.Sum256(b))
}

func maps2set(a, b Tree) []string {
	var all []string
	for p := range a {
		all = append(all, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			all = append(all, p)
		}
	}
	slices.Sort(all)
	return all
}

func sortedPaths(tr Tree) []string {
	paths := make([]string, 0, len(tr))
	for p := range tr {
		paths = append(paths, p)
	}
	// Parents sort before their children when comparing by components.
	slices.SortFunc(paths, func(a, b string) int {
		return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
	})
	return paths
}

// treeSize is the total content size of the tree.
func treeSize(tr Tree) int64 {
	var n int64
	for _, e := range tr {
		n += int64(len(e.Data))
	}
	return n
}
