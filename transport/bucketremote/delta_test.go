package bucketremote_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// streamCounter counts the bytes of the commit streams sent to a bucket
// and the bases they were sent against.
type streamCounter struct {
	*bucketremote.Remote
	bytes  atomic.Int64
	deltas atomic.Int64
}

func (s *streamCounter) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	if base != nil {
		s.deltas.Add(1)
	}
	return s.Remote.SendCommit(ctx, dot, branch, c, base, format, &countReader{r: data, n: &s.bytes})
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// mutateTree makes random changes of every kind a delta carries under
// dir: files written and removed, mtime-only and mode-only changes,
// directories made and removed, symlinks, a file where a directory was.
func mutateTree(t *testing.T, r *rand.Rand, dir string) {
	names := []string{"a", "a-b", "b", "c.d"}
	for range 1 + r.IntN(6) {
		p := names[r.IntN(len(names))]
		for r.IntN(2) == 0 {
			p = filepath.Join(p, names[r.IntN(len(names))])
		}
		p = filepath.Join(dir, p)
		if os.MkdirAll(filepath.Dir(p), 0o755) != nil {
			continue // a file is in the way: another round
		}
		switch r.IntN(6) {
		case 0, 1:
			os.RemoveAll(p)
			data := make([]byte, r.IntN(5000))
			for i := range data {
				data[i] = byte(r.IntN(4))
			}
			require.NoError(t, os.WriteFile(p, data, 0o644))
		case 2:
			os.RemoveAll(p)
		case 3:
			mt := time.Unix(1600000000+int64(r.IntN(1000)), int64(r.IntN(1000)))
			os.Chtimes(p, mt, mt)
		case 4:
			// Directories stay searchable, so that tests pass as any user.
			mode := 0o600 + os.FileMode(r.IntN(2))*0o44
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
				mode |= 0o700
			}
			os.Chmod(p, mode)
		case 5:
			os.RemoveAll(p)
			if r.IntN(2) == 0 {
				require.NoError(t, os.Symlink(fmt.Sprint("t", r.IntN(3)), p))
			} else {
				require.NoError(t, os.Mkdir(p, 0o755))
			}
		}
	}
}

func fetch(t *testing.T, r dotmesh.Transport, id dotmesh.CommitID, base *dotmesh.CommitID) []byte {
	t.Helper()
	rc, err := r.FetchCommit(context.Background(), app, id, base, dotmesh.FormatNeutral)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// TestDeltaPushes: every push after the first sends deltas; the bucket
// stores whole trees from them (a clone after many is the same tree),
// and hands out deltas itself that give the same trees.
func TestDeltaPushes(t *testing.T) {
	ctx := context.Background()
	b := newBucket(t)
	a := newNode(t)
	a.create(app)
	rem := &streamCounter{Remote: b.remote()}
	st, err := rem.State(ctx, app, "master", dotmesh.StateOptions{})
	require.NoError(t, err)
	require.True(t, st.AcceptsNeutralBase)
	r := rand.New(rand.NewPCG(5, 6))
	var commits []*dotmesh.Commit
	for i := range 12 {
		mutateTree(t, r, a.root(app, ""))
		commits = append(commits, a.commit(app, fmt.Sprint("c", i)))
		_, err := a.node.Push(ctx, app, "", rem, dotmesh.TransferOptions{})
		require.NoError(t, err)
	}
	require.Equal(t, int64(len(commits)-1), rem.deltas.Load(), "every push after the first is a delta")
	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, cloneRoot(t, b.remote(), app)))

	checkDeltas(t, rem, commits)
}

// checkDeltas: for each commit after the first, the whole stream of the
// one before it unpacked, with r's delta against it applied, is the
// commit's whole tree.
func checkDeltas(t *testing.T, r dotmesh.Transport, commits []*dotmesh.Commit) {
	t.Helper()
	for i := 1; i < len(commits); i++ {
		dir := t.TempDir()
		require.NoError(t, neutral.Read(bytes.NewReader(fetch(t, r, commits[i-1].ID, nil)), dir))
		delta := fetch(t, r, commits[i].ID, &commits[i-1].ID)
		require.NoError(t, neutral.ApplyDelta(bytes.NewReader(delta), dir, func(id string) error {
			require.Equal(t, string(commits[i-1].ID), id)
			return nil
		}))
		want := t.TempDir()
		require.NoError(t, neutral.Read(bytes.NewReader(fetch(t, r, commits[i].ID, nil)), want))
		requireSameTree(t, treeOf(t, want), treeOf(t, dir))
	}
}

// TestDeltaPushSendsTheChange: a push of a 1% change streams about 1%
// of the tree, and fetching it as a delta reads about as much.
func TestDeltaPushSendsTheChange(t *testing.T) {
	ctx := context.Background()
	b := newBucket(t)
	a := newNode(t)
	a.create(app)
	const files, size = 100, 100 << 10
	for i := range files {
		a.write(app, fmt.Sprintf("d/f%03d", i), randomBytes(int64(i), size))
	}
	c1 := a.commit(app, "one")
	rem := &streamCounter{Remote: b.remote()}
	_, err := a.node.Push(ctx, app, "", rem, dotmesh.TransferOptions{})
	require.NoError(t, err)
	whole := rem.bytes.Load()
	require.Greater(t, whole, int64(files*size))

	a.write(app, "d/f042", randomBytes(1000, size))
	c2 := a.commit(app, "two")
	rem.bytes.Store(0)
	_, err = a.node.Push(ctx, app, "", rem, dotmesh.TransferOptions{})
	require.NoError(t, err)
	inc := rem.bytes.Load()
	t.Logf("whole tree %d bytes; the push of one changed file of %d streamed %d bytes", whole, files, inc)
	require.Less(t, inc, int64(size+size/10), "a 1%% change streams about 1%%")
	require.Less(t, len(fetch(t, rem, c2.ID, &c1.ID)), size+size/10, "the bucket's delta is about 1%% too")
	requireSameTree(t, treeOf(t, a.root(app, "")), treeOf(t, cloneRoot(t, b.remote(), app)))
}

// rawDelta is a delta stream against base with the given records (as
// written bytes), and a good trailer: what a faulty sender might send.
func rawDelta(base string, records ...[]byte) []byte {
	var buf bytes.Buffer
	buf.WriteString("DMD1")
	buf.Write(binary.AppendUvarint(nil, uint64(len(base))))
	buf.WriteString(base)
	for _, r := range records {
		buf.Write(r)
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.WriteByte('e')
	buf.Write(sum[:])
	return buf.Bytes()
}

func rawRecord(kind byte, p string, mode uint64, content string) []byte {
	b := append([]byte{kind}, binary.AppendUvarint(nil, uint64(len(p)))...)
	b = append(b, p...)
	if kind == 'r' {
		return b
	}
	b = binary.AppendUvarint(b, mode)
	b = binary.AppendVarint(b, 0)
	if kind == 'f' {
		b = binary.AppendUvarint(b, uint64(len(content)))
		b = append(b, content...)
	}
	return b
}

// TestDeltaRefused: deltas against a base the bucket lacks, naming
// another base, removing what the base lacks, putting a record below a
// removed directory or a file, or a whole stream sent as a delta, are
// refused, and no commit is stored.
func TestDeltaRefused(t *testing.T) {
	ctx := context.Background()
	b := newBucket(t)
	a := newNode(t)
	a.create(app)
	a.write(app, "dir/f", []byte("x"))
	a.write(app, "g", []byte("y"))
	c1 := a.commit(app, "one")
	_, err := a.node.Push(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)
	r := b.remote()
	whole := fetch(t, r, c1.ID, nil)
	unknown := dotmesh.NewCommitID()
	base := string(c1.ID)
	for _, tc := range []struct {
		name   string
		base   dotmesh.CommitID
		stream []byte
		want   error
	}{
		{"unknown base", unknown, rawDelta(string(unknown)), dotmesh.ErrNotFound},
		{"another base named", c1.ID, rawDelta(string(unknown)), dotmesh.ErrCorrupt},
		{"removal of a missing path", c1.ID, rawDelta(base, rawRecord('r', "nothere", 0, "")), dotmesh.ErrCorrupt},
		{"record below a removed directory", c1.ID, rawDelta(base, rawRecord('r', "dir", 0, ""), rawRecord('f', "dir/new", 0o644, "z")), dotmesh.ErrCorrupt},
		{"record below a file", c1.ID, rawDelta(base, rawRecord('f', "g/x", 0o644, "z")), dotmesh.ErrCorrupt},
		{"record without its directory", c1.ID, rawDelta(base, rawRecord('f', "new/x", 0o644, "z")), dotmesh.ErrCorrupt},
		{"a whole stream as a delta", c1.ID, whole, dotmesh.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dotmesh.Commit{ID: dotmesh.NewCommitID(), Parent: c1.ID, Author: "x", Time: time.Now()}
			err := r.SendCommit(ctx, app, "master", c, &tc.base, dotmesh.FormatNeutral, bytes.NewReader(tc.stream))
			require.ErrorIs(t, err, tc.want)
			st, err := r.State(ctx, app, "master", dotmesh.StateOptions{})
			require.NoError(t, err)
			require.False(t, slices.Contains(st.Have, c.ID), "nothing stored")
		})
	}
	// A delta sent without a base is refused as a whole stream.
	c := dotmesh.Commit{ID: dotmesh.NewCommitID(), Parent: c1.ID, Author: "x", Time: time.Now()}
	require.ErrorIs(t, r.SendCommit(ctx, app, "master", c, nil, dotmesh.FormatNeutral, bytes.NewReader(rawDelta(base))), dotmesh.ErrCorrupt)
}
