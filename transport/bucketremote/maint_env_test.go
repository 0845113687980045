package bucketremote_test

// The environment of the maintenance and fault tests: one real SeaweedFS
// S3 server (bucket/s3test) for a whole test function, a fresh prefix of
// its bucket per subtest, and real nodes (bbolt registry, dump backend)
// in temporary directories.

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	_ "github.com/dotmesh-io/dotmesh/bucket/s3" // the s3:// kind
	"github.com/dotmesh-io/dotmesh/bucket/s3test"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// mtPassword opens the test repositories; mtKDF keeps opening cheap.
var (
	mtPassword = []byte("maint test password")
	mtKDF      = repo.KDFParams{Name: repo.KDFArgon2id, Time: 1, Memory: 1024, Threads: 1}
	mtDot      = dotmesh.DotName{Namespace: "admin", Name: "app"}
	mtDotFull  = "admin/app" // as Problems name it
)

// mtBucket is one prefix of the test bucket.
type mtBucket struct {
	t      *testing.T
	srv    *s3test.Server
	prefix string
}

// mtNewBucket makes a repository in a fresh prefix named after the test.
func mtNewBucket(t *testing.T, srv *s3test.Server) *mtBucket {
	t.Helper()
	prefix := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, t.Name())
	prefix = prefix[max(0, len(prefix)-40):] + "-" + mtRandHex(8)
	b := &mtBucket{t: t, srv: srv, prefix: prefix}
	r, err := bucketremote.Init(context.Background(), b.config(srv.Config()), repo.InitOptions{Password: mtPassword, KDF: mtKDF})
	if err != nil {
		t.Fatalf("making a repository at %s: %v", b.url(), err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

func mtRandHex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rand.IntN(16)]
	}
	return string(b)
}

func (b *mtBucket) url() string { return b.srv.URL(b.prefix) }

func (b *mtBucket) config(creds bucket.Config) bucketremote.Config {
	// Few, short retries: a killed server is found out in seconds.
	return bucketremote.Config{URL: b.url(), Store: creds, Password: mtPassword,
		Retry: bucket.RetryOptions{Attempts: 2, Base: 50e6, Max: 100e6}}
}

// dial opens the repository with the writer's credentials (opts tune
// it: a clock, the lock expiry); it is closed when the test ends.
func (b *mtBucket) dial(opts repo.Options) *bucketremote.Remote {
	b.t.Helper()
	cfg := b.config(b.srv.Config())
	cfg.Repo = opts
	return b.dialWith(cfg)
}

func (b *mtBucket) dialWith(cfg bucketremote.Config) *bucketremote.Remote {
	b.t.Helper()
	r, err := bucketremote.Dial(context.Background(), cfg)
	if err != nil {
		b.t.Fatalf("opening the repository at %s: %v", b.url(), err)
	}
	b.t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// push pushes mtDot's master from n with a Remote of its own, closed
// after (a push's shared lock lasts until Close).
func (b *mtBucket) push(n *mtNode) {
	b.t.Helper()
	r := b.dial(repo.Options{})
	n.push(mtDot, "master", r)
	if err := r.Close(context.Background()); err != nil {
		b.t.Fatal(err)
	}
}

// store opens the prefix raw, behind the repository's back.
func (b *mtBucket) store() bucket.Store {
	b.t.Helper()
	st, err := bucket.Open(context.Background(), b.url(), b.srv.Config())
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { st.Close() })
	return st
}

// objects lists every object of the prefix with its size.
func (b *mtBucket) objects() map[string]int64 {
	b.t.Helper()
	out := map[string]int64{}
	st := b.store()
	if err := st.List(context.Background(), "", func(oi bucket.ObjectInfo) error {
		out[oi.Name] = oi.Size
		return nil
	}); err != nil {
		b.t.Fatal(err)
	}
	return out
}

// objectsUnder lists the names of the objects under dir ("packs/").
func (b *mtBucket) objectsUnder(dir string) []string {
	var out []string
	for name := range b.objects() {
		if strings.HasPrefix(name, dir) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// mtStart makes a bucket and a node holding mtDot with commits msgs
// (mtNode.history) on master.
func mtStart(t *testing.T, srv *s3test.Server, seed uint64, msgs ...string) (*mtBucket, *mtNode, []*dotmesh.Commit) {
	t.Helper()
	b := mtNewBucket(t, srv)
	n := mtNewNode(t)
	n.create(mtDot)
	return b, n, n.history(mtDot, "", seed, msgs...)
}

// mtNode is a node with a bbolt registry and the dump backend.
type mtNode struct {
	t    *testing.T
	node *dotmesh.Node
}

func mtNewNode(t *testing.T) *mtNode {
	t.Helper()
	dir := t.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &mtNode{t: t, node: n}
}

// path is the working directory of dot's branch (its default subdot).
func (n *mtNode) path(dot dotmesh.DotName, branch string) string {
	n.t.Helper()
	p, err := n.node.SubdotPath(context.Background(), dotmesh.VolumeName{Dot: dot, Branch: branch})
	if err != nil {
		n.t.Fatal(err)
	}
	return p
}

// write sets files of dot's branch (content by relative path).
func (n *mtNode) write(dot dotmesh.DotName, branch string, files map[string][]byte) {
	n.t.Helper()
	p := n.path(dot, branch)
	for name, content := range files {
		f := filepath.Join(p, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			n.t.Fatal(err)
		}
		if err := os.WriteFile(f, content, 0o644); err != nil {
			n.t.Fatal(err)
		}
	}
}

// commit writes files and commits them on dot's branch.
func (n *mtNode) commit(dot dotmesh.DotName, branch, msg string, files map[string][]byte) *dotmesh.Commit {
	n.t.Helper()
	n.write(dot, branch, files)
	c, err := n.node.Commit(context.Background(), dot, branch, dotmesh.CommitOptions{Message: msg, Author: "maint test"})
	if err != nil {
		n.t.Fatal(err)
	}
	return c
}

func (n *mtNode) create(dot dotmesh.DotName) {
	n.t.Helper()
	if _, err := n.node.CreateDot(context.Background(), dot, dotmesh.CreateDotOptions{}); err != nil {
		n.t.Fatal(err)
	}
}

func (n *mtNode) push(dot dotmesh.DotName, branch string, r *bucketremote.Remote) *dotmesh.TransferResult {
	n.t.Helper()
	res, err := n.node.Push(context.Background(), dot, branch, r, dotmesh.TransferOptions{})
	if err != nil {
		n.t.Fatalf("pushing %s@%s to the bucket: %v", dot, branch, err)
	}
	return res
}

func (n *mtNode) tag(dot dotmesh.DotName, name, ref string) {
	n.t.Helper()
	if _, err := n.node.Tags().Create(context.Background(), dot, name, dotmesh.TagOptions{Ref: ref}); err != nil {
		n.t.Fatal(err)
	}
}

// checkClone clones mtDot's master from r onto a fresh node and fails
// the test when its tree differs from n's.
func (n *mtNode) checkClone(r *bucketremote.Remote, when string) {
	n.t.Helper()
	want := backendtest.ReadTree(n.t, n.path(mtDot, "master"))
	m := mtNewNode(n.t)
	if _, err := m.node.Clone(context.Background(), mtDot, "master", r, dotmesh.TransferOptions{}); err != nil {
		n.t.Fatalf("cloning %s from the bucket %s: %v", mtDot, when, err)
	}
	if d := backendtest.DiffTrees(backendtest.ReadTree(n.t, m.path(mtDot, "master")), want); len(d) > 0 {
		n.t.Errorf("a clone %s differs from the pushed tree: %s", when, strings.Join(d, "; "))
	}
}

// mtHasDot says whether the node holds dot.
func (n *mtNode) hasDot(dot dotmesh.DotName) bool {
	n.t.Helper()
	_, err := n.node.Dot(context.Background(), dot)
	if err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
		n.t.Fatal(err)
	}
	return err == nil
}
