package dotmesh_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// fetchNeutral is the neutral stream of commit id of app, against base
// when it is set.
func fetchNeutral(t *testing.T, n *dotmesh.Node, id dotmesh.CommitID, base *dotmesh.CommitID) []byte {
	rc, err := dotmesh.LocalTransport(n).FetchCommit(context.Background(), app, id, base, dotmesh.FormatNeutral)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// streamSummary lists a whole stream's records with their contents'
// hashes; symlink times are left out (unpacking cannot set them).
func streamSummary(t *testing.T, stream []byte) string {
	var lines []string
	err := neutral.Scan(bytes.NewReader(stream), func(e neutral.Entry, c io.Reader) error {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			return err
		}
		mt := e.MTime.UnixNano()
		if e.Kind == neutral.KindSymlink {
			mt = 0
		}
		lines = append(lines, fmt.Sprintf("%c %s %o %d %d %q %x", e.Kind, e.Path, e.Mode, mt, e.Size, e.Target, h.Sum(nil)[:6]))
		return nil
	})
	require.NoError(t, err)
	return strings.Join(lines, "\n")
}

func dirStream(t *testing.T, dir string) []byte {
	var buf bytes.Buffer
	require.NoError(t, neutral.Write(dir, &buf))
	return buf.Bytes()
}

// mutateDir makes random changes of every kind under dir: files written,
// removed, touched (mtime only), chmodded, directories made and removed,
// symlinks, kinds swapped.
func mutateDir(t *testing.T, r *rand.Rand, dir string) {
	names := []string{"a", "a-b", "b", "c.d"}
	pick := func() string {
		p := names[r.IntN(len(names))]
		for r.IntN(2) == 0 {
			p = filepath.Join(p, names[r.IntN(len(names))])
		}
		return filepath.Join(dir, p)
	}
	for range 1 + r.IntN(6) {
		p := pick()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			continue // a file is where a directory would be: another change
		}
		switch r.IntN(6) {
		case 0, 1:
			os.RemoveAll(p)
			data := make([]byte, r.IntN(3000))
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
				require.NoError(t, os.Symlink("t"+fmt.Sprint(r.IntN(3)), p))
			} else {
				require.NoError(t, os.Mkdir(p, 0o755))
			}
		}
	}
}

// TestNeutralDeltaProperty: on the dump backend, for random changes
// committed one after another, the whole stream of a commit's parent
// unpacked and the delta against it applied gives the commit's whole
// stream, mtime-only changes included.
func TestNeutralDeltaProperty(t *testing.T) {
	ctx := context.Background()
	a := newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	root, err := a.node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: dotmesh.RootSubdot})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(1, 2))
	prev := a.commit("empty")
	for i := range 25 {
		mutateDir(t, r, root)
		c := a.commit(fmt.Sprint("c", i))
		whole := fetchNeutral(t, a.node, c.ID, nil)
		require.Equal(t, streamSummary(t, dirStream(t, root)), streamSummary(t, whole), "commit %d: the whole stream is the committed tree", i)
		dir := t.TempDir()
		require.NoError(t, neutral.Read(bytes.NewReader(fetchNeutral(t, a.node, prev.ID, nil)), dir))
		delta := fetchNeutral(t, a.node, c.ID, &prev.ID)
		require.NoError(t, neutral.ApplyDelta(bytes.NewReader(delta), dir, func(id string) error {
			require.Equal(t, string(prev.ID), id)
			return nil
		}))
		require.Equal(t, streamSummary(t, whole), streamSummary(t, dirStream(t, dir)), "commit %d: base + delta", i)
		prev = c
	}
}

// TestNeutralDeltaSendsTheChange: a delta of a 1% change carries about
// that 1%, and an unchanged commit's delta is empty.
func TestNeutralDeltaSendsTheChange(t *testing.T) {
	ctx := context.Background()
	a := newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 100 {
		data := make([]byte, 10<<10)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		a.write("app", fmt.Sprintf("f%03d", i), string(data))
	}
	c1 := a.commit("one")
	a.write("app", "f042", strings.Repeat("x", 10<<10))
	c2 := a.commit("two")
	c3 := a.commit("same")
	whole := fetchNeutral(t, a.node, c2.ID, nil)
	delta := fetchNeutral(t, a.node, c2.ID, &c1.ID)
	require.Greater(t, len(whole), 100*10<<10)
	require.Less(t, len(delta), 10<<10+500, "a delta of one 10 KiB file of 100")
	require.Less(t, len(fetchNeutral(t, a.node, c3.ID, &c2.ID)), 80, "no change: a header and a trailer")
}

// deltaCounter is a node's transport counting the neutral deltas and
// bytes it is sent.
type deltaCounter struct {
	dotmesh.Transport
	deltas, bytes int64
}

func (d *deltaCounter) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	if base != nil {
		d.deltas++
	}
	b, err := io.ReadAll(data)
	if err != nil {
		return err
	}
	d.bytes += int64(len(b))
	return d.Transport.SendCommit(ctx, dot, branch, c, base, format, bytes.NewReader(b))
}

// TestNeutralDeltaNodeReceives: a node takes neutral deltas: random
// changes pushed one commit at a time arrive as deltas, and the
// receiver's tree is the sender's after each.
func TestNeutralDeltaNodeReceives(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	root := func(e *env) string {
		p, err := e.node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: dotmesh.RootSubdot})
		require.NoError(t, err)
		return p
	}
	st, err := dotmesh.LocalTransport(b.node).State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true})
	require.NoError(t, err)
	require.True(t, st.AcceptsNeutralBase, "a node advertises that it takes neutral deltas")
	to := &deltaCounter{Transport: dotmesh.LocalTransport(b.node)}
	r := rand.New(rand.NewPCG(9, 9))
	for i := range 15 {
		mutateDir(t, r, root(a))
		a.commit(fmt.Sprint("c", i))
		_, err := a.node.Push(ctx, app, "", to, dotmesh.TransferOptions{Neutral: true})
		require.NoError(t, err)
		require.Equal(t, streamSummary(t, dirStream(t, root(a))), streamSummary(t, dirStream(t, root(b))), "round %d", i)
	}
	require.Equal(t, int64(14), to.deltas, "every push after the first is a delta")

	// Bad deltas: refused, no commit recorded, the branch as it was.
	head := a.commit("head")
	log, err := b.node.Log(ctx, app, "", 0)
	require.NoError(t, err)
	base := log[0].ID
	c := *head
	c.Parent = base
	for name, stream := range map[string][]byte{
		"removal of a missing path": deltaBytes(t, string(base), neutral.Entry{Kind: neutral.KindRemoved, Path: "not-there"}),
		"another base":              deltaBytes(t, string(head.ID)),
	} {
		err := dotmesh.LocalTransport(b.node).SendCommit(ctx, app, "master", c, &base, dotmesh.FormatNeutral, bytes.NewReader(stream))
		require.ErrorIs(t, err, dotmesh.ErrCorrupt, name)
		st, err := dotmesh.LocalTransport(b.node).State(ctx, app, "master", dotmesh.StateOptions{})
		require.NoError(t, err)
		require.NotContains(t, st.Have, head.ID, name)
	}
	unknown := dotmesh.NewCommitID()
	err = dotmesh.LocalTransport(b.node).SendCommit(ctx, app, "master", c, &unknown, dotmesh.FormatNeutral, bytes.NewReader(deltaBytes(t, string(unknown))))
	require.ErrorIs(t, err, dotmesh.ErrNotFound)
}

func deltaBytes(t *testing.T, base string, es ...neutral.Entry) []byte {
	var buf bytes.Buffer
	w, err := neutral.NewDeltaWriter(&buf, base)
	require.NoError(t, err)
	for _, e := range es {
		require.NoError(t, w.Add(e, nil))
	}
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// TestNeutralPatchSendsChangedBytes: between two nodes, a 2-byte change
// in a 4 MiB file goes as a patch of about those bytes, and the
// receiver's tree is the sender's.
func TestNeutralPatchSendsChangedBytes(t *testing.T) {
	ctx := context.Background()
	a, b := newEnv(t), newEnv(t)
	_, err := a.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, 4<<20)
	for j := range data {
		data[j] = byte(r.Uint32())
	}
	a.write("app", "big", string(data))
	a.write("app", "small", "hello")
	a.commit("one")
	to := &deltaCounter{Transport: dotmesh.LocalTransport(b.node)}
	_, err = a.node.Push(ctx, app, "", to, dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	data[3<<20] ^= 1
	data[3<<20+1] ^= 2
	a.write("app", "big", string(data))
	a.commit("two")
	to.bytes = 0
	_, err = a.node.Push(ctx, app, "", to, dotmesh.TransferOptions{Neutral: true})
	require.NoError(t, err)
	t.Logf("a 2-byte change of a 4 MiB file: %d bytes sent", to.bytes)
	require.Less(t, to.bytes, int64(300), "a 2-byte change of a 4 MiB file")
	require.Equal(t, streamSummary(t, dirStream(t, rootOf(t, a, ""))), streamSummary(t, dirStream(t, rootOf(t, b, ""))))
}
