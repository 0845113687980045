package dotmesh

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// twoTrees writes n files into two directories, the same bytes in both
// except for the files in changed (same size, one byte differs, at a
// random place, sometimes past the first MiB), and opens them as trees.
func twoTrees(t *testing.T, n int, changed map[int]bool) (ta, tb *commitTree, dirB string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := t.TempDir(), t.TempDir()
	for i := range n {
		size := 1 + rng.IntN(8<<10)
		if i%17 == 0 {
			size = 1<<20 + rng.IntN(1<<20) // more than one read
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		p := filepath.Join(fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%04d", i))
		for _, root := range []string{a, b} {
			require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
			if root == b && changed[i] {
				data[rng.IntN(size)]++
			}
			require.NoError(t, os.WriteFile(filepath.Join(root, p), data, 0o644))
		}
	}
	open := func(dir string) *commitTree {
		tr, err := openDirTree(context.Background(), dir, func() {})
		require.NoError(t, err)
		indexTree(tr)
		t.Cleanup(tr.close)
		return tr
	}
	return open(a), open(b), b
}

// TestCompareTreesConcurrent: the files compared by their bytes, many
// at once, give exactly the changed ones, in path order; stopping early
// stops there; a read error is returned.
func TestCompareTreesConcurrent(t *testing.T) {
	ctx := context.Background()
	const n = 300
	changed := map[int]bool{}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 60 {
		changed[rng.IntN(n)] = true
	}
	a, b, dirB := twoTrees(t, n, changed)
	var want []string
	for i := range n {
		if changed[i] {
			want = append(want, fmt.Sprintf("d%d/f%04d", i%7, i))
		}
	}
	slices.Sort(want)

	var got []string
	require.NoError(t, compareTrees(ctx, a, b, nil, func(ch treeChange) (bool, error) {
		require.Equal(t, ChangeModified, ch.kind)
		got = append(got, ch.path())
		return true, nil
	}))
	require.Equal(t, want, got)

	out, more, err := diffTrees(ctx, a, b, 5)
	require.NoError(t, err)
	require.True(t, more)
	require.Len(t, out, 5)
	for i, fc := range out {
		require.Equal(t, want[i], fc.Path)
	}

	// A file gone from under the comparison is an error, not "same".
	var victim string
	for i := range n {
		if !changed[i] {
			victim = fmt.Sprintf("d%d/f%04d", i%7, i)
			break
		}
	}
	require.NoError(t, os.Remove(filepath.Join(dirB, victim)))
	err = compareTrees(ctx, a, b, nil, func(treeChange) (bool, error) { return true, nil })
	require.ErrorContains(t, err, victim)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, compareTrees(cctx, a, a, nil, func(treeChange) (bool, error) { return true, nil }), context.Canceled)
}

// TestWalkRootMatchesWalkDir: the concurrent walk lists what a plain
// fs.WalkDir lists: directories, files with sizes, symlinks with their
// targets; fifos are left out.
func TestWalkRootMatchesWalkDir(t *testing.T) {
	dir := t.TempDir()
	for i := range 200 {
		p := filepath.Join(dir, fmt.Sprintf("a%d", i%5), fmt.Sprintf("b%d", i%11), fmt.Sprintf("f%d", i))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, make([]byte, i), 0o640))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "empty", "deeper"), 0o700))
	require.NoError(t, os.Symlink("../a1", filepath.Join(dir, "a0", "link")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))

	var want []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		info, err := de.Info()
		require.NoError(t, err)
		switch {
		case rel == ".", info.Mode()&fs.ModeNamedPipe != 0:
			return nil
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			require.NoError(t, err)
			want = append(want, fmt.Sprintf("%s %v -> %s", rel, keptMode(info.Mode()), target))
		case info.Mode().IsRegular():
			want = append(want, fmt.Sprintf("%s %v %d", rel, keptMode(info.Mode()), info.Size()))
		default:
			want = append(want, fmt.Sprintf("%s %v", rel, keptMode(info.Mode())))
		}
		return nil
	}))
	tr, err := openDirTree(context.Background(), dir, func() {})
	require.NoError(t, err)
	defer tr.close()
	indexTree(tr)
	var got []string
	for _, e := range tr.entries {
		switch {
		case e.Mode&fs.ModeSymlink != 0:
			got = append(got, fmt.Sprintf("%s %v -> %s", e.Path, e.Mode, e.Target))
		case e.Mode.IsRegular():
			got = append(got, fmt.Sprintf("%s %v %d", e.Path, e.Mode, e.Size))
		default:
			got = append(got, fmt.Sprintf("%s %v", e.Path, e.Mode))
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	require.Equal(t, want, got)
	if runtime.GOOS == "linux" {
		require.Len(t, tr.ids, 200, "every regular file has an inode id")
	}
}
