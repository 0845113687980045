package dotmesh

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSameByInodes: on a real directory, equal inode ids prove a file
// unchanged only between trees linked by proveByInodes, only for ctimes
// before the cutoff, and a rewrite (new ctime) or another inode (a copy)
// is never proven.
func TestSameByInodes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, p := range []string{"a", "b", "c"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte("same"), 0o644))
	}
	open := func() *commitTree {
		tr, err := openDirTree(ctx, dir, func() {})
		require.NoError(t, err)
		t.Cleanup(tr.close)
		return tr
	}
	a := open()
	require.Len(t, a.ids, 3, "every regular file has an inode id")
	info, err := os.Stat(filepath.Join(dir, "b"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b"), []byte("diff"), 0o644))
	require.NoError(t, os.Chtimes(filepath.Join(dir, "b"), info.ModTime(), info.ModTime()))
	require.NoError(t, os.Remove(filepath.Join(dir, "c")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c"), []byte("same"), 0o644))
	b := open()

	require.False(t, sameByInodes(a, b, "a"), "trees not linked prove nothing")
	link := func(cutoff time.Time) {
		a.proof, b.proof = b, a
		a.proofBefore, b.proofBefore = cutoff.UnixNano(), cutoff.UnixNano()
	}
	link(time.Now().Add(time.Hour))
	require.True(t, sameByInodes(a, b, "a"), "an untouched file is proven unchanged")
	require.False(t, sameByInodes(a, b, "b"), "a rewrite at the same size and mtime has a new ctime")
	require.False(t, sameByInodes(a, b, "c"), "a file made anew is another inode or has a new ctime")
	require.False(t, sameByInodes(a, b, "missing"))
	link(time.Unix(0, a.ids["a"].ctime))
	require.False(t, sameByInodes(a, b, "a"), "a ctime not before the cutoff proves nothing")
}

// TestProofMargin: a second more where a filesystem keeps whole-second
// ctimes (zfs-fuse), as a later write in the same second keeps the ctime.
func TestProofMargin(t *testing.T) {
	whole := &commitTree{ids: map[string]inodeID{"a": {ino: 1, ctime: 5 * int64(time.Second)}}}
	fine := &commitTree{ids: map[string]inodeID{"a": {ino: 1, ctime: 5*int64(time.Second) + 7}}}
	require.Equal(t, inodeProofMargin+time.Second, proofMargin(whole, whole))
	require.Equal(t, inodeProofMargin, proofMargin(whole, fine))
	require.Equal(t, inodeProofMargin, proofMargin(fine, whole))
}
