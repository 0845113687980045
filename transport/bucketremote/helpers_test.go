package bucketremote_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// cheapKDF keeps tests fast; the KDF itself is tested in bucket/repo.
var cheapKDF = repo.KDFParams{Name: repo.KDFArgon2id, Time: 1, Memory: 1024, Threads: 1}

var password = []byte("correct horse")

var app = dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}

// node is a real dotmesh node: the dump backend and a bbolt registry in
// a temporary directory.
type node struct {
	t    *testing.T
	node *dotmesh.Node
}

func newNode(t *testing.T) *node {
	return newNodeWith(t, nil)
}

// newNodeWith makes a node whose backends are the dump backend and
// extra (the first of extra is the default for new dots when given).
func newNodeWith(t *testing.T, extra dotmesh.StorageBackend) *node {
	t.Helper()
	dir := t.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	require.NoError(t, err)
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	require.NoError(t, err)
	bes := []dotmesh.StorageBackend{be}
	if extra != nil {
		bes = []dotmesh.StorageBackend{extra, be}
	}
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: st, Backends: bes})
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	return &node{t: t, node: n}
}

// root is the directory of dot's branch's whole working tree.
func (n *node) root(dot dotmesh.DotName, branch string) string {
	n.t.Helper()
	p, err := n.node.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: dot, Branch: branch, Subdot: dotmesh.RootSubdot})
	require.NoError(n.t, err)
	return p
}

func (n *node) create(dot dotmesh.DotName) {
	n.t.Helper()
	_, err := n.node.CreateDot(context.Background(), dot, dotmesh.CreateDotOptions{})
	require.NoError(n.t, err)
}

func (n *node) write(dot dotmesh.DotName, file string, content []byte) {
	n.t.Helper()
	p := filepath.Join(n.root(dot, ""), file)
	require.NoError(n.t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(n.t, os.WriteFile(p, content, 0o644))
}

func (n *node) commit(dot dotmesh.DotName, msg string) *dotmesh.Commit {
	n.t.Helper()
	c, err := n.node.Commit(context.Background(), dot, "", dotmesh.CommitOptions{Message: msg, Author: "tester"})
	require.NoError(n.t, err)
	return c
}

func (n *node) log(dot dotmesh.DotName, branch string) []*dotmesh.Commit {
	n.t.Helper()
	cs, err := n.node.Log(context.Background(), dot, branch, 0)
	require.NoError(n.t, err)
	return cs
}

func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// countingStore counts the bytes written to a store.
type countingStore struct {
	bucket.Store
	put atomic.Int64
}

func (c *countingStore) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	err := c.Store.Put(ctx, name, r, size)
	if err == nil {
		c.put.Add(size)
	}
	return err
}

func (c *countingStore) Create(ctx context.Context, name string, r io.Reader, size int64) error {
	err := c.Store.Create(ctx, name, r, size)
	if err == nil {
		c.put.Add(size)
	}
	return err
}

// Close keeps the store open: the test closes it.
func (c *countingStore) Close() error { return nil }

// bucketEnv is a repository in a store (a directory unless S3 is given)
// that Remotes are made on.
type bucketEnv struct {
	t     *testing.T
	dir   string // the directory store's
	store *countingStore
}

func newBucket(t *testing.T) *bucketEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := bucket.OpenDir(dir)
	require.NoError(t, err)
	return initBucket(t, st, dir)
}

func initBucket(t *testing.T, st bucket.Store, dir string) *bucketEnv {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	b := &bucketEnv{t: t, dir: dir, store: &countingStore{Store: st}}
	rp, err := repo.Init(context.Background(), b.store, repo.InitOptions{Password: password, KDF: cheapKDF}, repo.Options{})
	require.NoError(t, err)
	require.NoError(t, rp.Close())
	return b
}

// remote opens a Remote on the bucket, closed when the test ends.
func (b *bucketEnv) remote() *bucketremote.Remote {
	b.t.Helper()
	rp, err := repo.Open(context.Background(), b.store, password, repo.Options{})
	require.NoError(b.t, err)
	r := bucketremote.New(rp, bucketremote.Config{})
	var once sync.Once
	b.t.Cleanup(func() { once.Do(func() { r.Close(context.Background()) }) })
	return r
}

// fileState is what a tree keeps of a path.
type fileState struct {
	Mode    fs.FileMode
	MTime   time.Time
	Content []byte
	Target  string
}

// treeOf reads a directory's tree: modes, mtimes (not of symlinks, which
// the neutral stream does not carry), contents and link targets.
func treeOf(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		fsn := fileState{Mode: info.Mode()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			fsn.Target, err = os.Readlink(p)
		case info.Mode().IsRegular():
			fsn.MTime = info.ModTime()
			fsn.Content, err = os.ReadFile(p)
		default:
			fsn.MTime = info.ModTime()
		}
		out[rel] = fsn
		return err
	}))
	return out
}

func requireSameTree(t *testing.T, want, got map[string]fileState) {
	t.Helper()
	require.Equal(t, len(want), len(got), "entries")
	for p, w := range want {
		g, ok := got[p]
		require.True(t, ok, "%s is missing", p)
		require.Equal(t, w.Mode, g.Mode, "mode of %s", p)
		require.True(t, w.MTime.Equal(g.MTime), "mtime of %s: %v, want %v", p, g.MTime, w.MTime)
		require.True(t, bytes.Equal(w.Content, g.Content), "content of %s", p)
		require.Equal(t, w.Target, g.Target, "target of %s", p)
	}
}

// cloneRoot clones dot from r onto a new node and returns its root.
func cloneRoot(t *testing.T, r dotmesh.Transport, dot dotmesh.DotName) string {
	t.Helper()
	c := newNode(t)
	_, err := c.node.Clone(context.Background(), dot, "", r, dotmesh.TransferOptions{})
	require.NoError(t, err)
	return c.root(dot, "")
}

// cloneFile clones dot from r onto a new node and returns file's content.
func cloneFile(t *testing.T, r dotmesh.Transport, dot dotmesh.DotName, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cloneRoot(t, r, dot), file))
	require.NoError(t, err)
	return b
}
