package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/s3test"
)

// withExtra adds environment for the next dm commands; the func it
// returns takes it away again.
func (e *env) withExtra(kv ...string) func() {
	old := e.extra
	e.extra = append(append([]string(nil), old...), kv...)
	return func() { e.extra = old }
}

// TestBucketRemoteS3 drives a bucket remote with the real dm against a
// real S3 server (SeaweedFS) and two nodes: remote add (init, re-add with
// the right and a wrong password), push from one node, clone onto the
// other (byte-identical), incremental push and pull, keys, the password from
// the environment and from a file, no password without a terminal,
// read-only credentials, the server down, and --no-encryption.
// TestBucketMaintenanceS3 has list, log, gc and verify.
func TestBucketRemoteS3(t *testing.T) {
	srv := s3test.Start(t)
	na := startServe(t, "a", "127.0.0.1")
	nb := startServe(t, "b", "127.0.0.1")
	e := newEnv(t)
	e.addRemote(na)
	e.addRemote(nb)
	creds := []string{"AWS_ACCESS_KEY_ID=" + s3test.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3test.SecretKey}
	url := srv.URL("e2e-enc")
	e.extra = creds

	// No terminal and no password: the three ways, nothing saved.
	r := e.fails("give --password-file FILE, set DOTMESH_REMOTE_PASSWORD, or run dm on a terminal", "remote", "add", "s3", url, "--endpoint", srv.Endpoint)
	if r.code != 3 || strings.Contains(e.ok("remote", "-v"), "s3://") {
		t.Fatalf("a remote add without a password: %v; or it saved the remote", r)
	}
	restore := e.withExtra("DOTMESH_REMOTE_PASSWORD=pw-one")
	if out := e.ok("remote", "add", "s3", url, "--endpoint", srv.Endpoint); !strings.Contains(out, "made an encrypted repository") {
		t.Fatalf("dm remote add: %q", out)
	}
	cfg, err := os.ReadFile(e.config)
	must(t, err)
	if bytes.Contains(cfg, []byte("pw-one")) || bytes.Contains(cfg, []byte(s3test.SecretKey)) {
		t.Fatalf("the client config holds a secret:\n%s", cfg)
	}
	e.ok("remote", "rm", "s3")
	if out := e.ok("remote", "add", "s3", url, "--endpoint", srv.Endpoint); !strings.Contains(out, "opens with the password") {
		t.Fatalf("re-adding with the right password: %q", out)
	}
	restore()
	e.ok("remote", "rm", "s3")
	restore = e.withExtra("DOTMESH_REMOTE_PASSWORD=wrong")
	if r := e.fails("wrong password", "remote", "add", "s3", url, "--endpoint", srv.Endpoint); r.code != 6 {
		t.Fatalf("a wrong password: %v; want exit 6", r)
	}
	restore()
	pwFile := filepath.Join(t.TempDir(), "pw")
	must(t, os.WriteFile(pwFile, []byte("pw-one\n"), 0o600))
	e.ok("remote", "add", "s3", url, "--endpoint", srv.Endpoint, "--password-file", pwFile)
	if !strings.Contains(e.ok("remote", "-v"), "s3  "+url+" at "+srv.Endpoint) {
		t.Fatalf("dm remote -v:\n%s", e.ok("remote", "-v"))
	}

	// Node a pushes a dot of a few MiB; node b clones it byte for byte.
	e.on(na, "init", "app")
	dir := e.pathOn(na, "app")
	big := make([]byte, 3<<20)
	rand.Read(big)
	must(t, os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644))
	writeFile(t, filepath.Join(dir, "sub", "small.txt"), "hello bucket\n")
	e.commitOn(na, "app", "first")
	first := e.transfer(na, "push", "s3", "app")
	if first.Commits != 1 {
		t.Fatalf("first push: %+v", first)
	}
	e.on(nb, "clone", "s3", "app")
	if a, b := readTree(t, dir), readTree(t, e.pathOn(nb, "app")); !sameTree(a, b) {
		t.Fatalf("the clone differs from the pushed tree: %d files vs %d", len(a), len(b))
	}

	// An incremental push: a small change, one commit.
	big[100] ^= 0xff
	must(t, os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644))
	e.commitOn(na, "app", "second")
	if s := e.transfer(na, "push", "s3", "app"); s.Commits != 1 {
		t.Fatalf("incremental push: %+v", s)
	}
	e.on(nb, "pull", "s3", "app")
	if a, b := readTree(t, dir), readTree(t, e.pathOn(nb, "app")); !sameTree(a, b) {
		t.Fatal("the pull did not bring the change")
	}

	// Keys: a second password opens it; the one in use stays.
	newPW := filepath.Join(t.TempDir(), "new")
	must(t, os.WriteFile(newPW, []byte("pw-two"), 0o600))
	id := strings.TrimSpace(e.ok("remote", "key", "add", "s3", "--new-password-file", newPW, "-H"))
	if out := e.ok("remote", "key", "list", "s3", "--password-file", newPW); !strings.Contains(out, "* "+id) {
		t.Fatalf("dm remote key list with the new password:\n%s", out)
	}
	var inUse string
	for _, l := range strings.Split(e.ok("remote", "key", "list", "s3", "-H"), "\n") {
		if strings.HasSuffix(l, "\tyes") {
			inUse = strings.Fields(l)[0]
		}
	}
	if r := e.fails("pass --force", "remote", "key", "remove", "s3", inUse); r.code != 5 {
		t.Fatalf("removing the key in use: %v", r)
	}
	e.ok("remote", "key", "remove", "s3", id)
	e.fails("wrong password", "remote", "key", "list", "s3", "--password-file", newPW)

	// The password from the environment, the saved file absent.
	e.ok("remote", "rm", "s3")
	restore = e.withExtra("DOTMESH_REMOTE_PASSWORD=pw-one")
	e.ok("remote", "add", "s3", url, "--endpoint", srv.Endpoint)
	e.ok("remote", "key", "list", "s3")
	restore()
	e.fails("no password for bucket remote s3", "remote", "key", "list", "s3")

	// Read-only credentials: a push is refused (exit 10), nothing lost.
	writeFile(t, filepath.Join(dir, "third.txt"), "third")
	e.commitOn(na, "app", "third")
	e.extra = []string{"AWS_ACCESS_KEY_ID=" + s3test.ReadOnlyAccessKey, "AWS_SECRET_ACCESS_KEY=" + s3test.ReadOnlySecretKey, "DOTMESH_REMOTE_PASSWORD=pw-one"}
	if r := e.fails("bucket remote s3", "--remote", "a", "push", "s3", "app"); r.code != 10 {
		t.Fatalf("a push with read-only credentials: %v; want exit 10", r)
	}
	e.extra = append(append([]string(nil), creds...), "DOTMESH_REMOTE_PASSWORD=pw-one")
	if s := e.transfer(na, "push", "s3", "app"); s.Commits != 1 {
		t.Fatalf("the push after a refused one: %+v; want the one commit the refused push did not land", s)
	}

	// The server down: unavailable, exit 7, naming the endpoint.
	srv.Kill()
	if r := e.fails(srv.Endpoint, "remote", "key", "list", "s3"); r.code != 7 {
		t.Fatalf("the S3 server down: %v; want exit 7", r)
	}
	srv.Restart(t)

	// --no-encryption: plain objects, still cloned byte for byte.
	plain := srv.URL("e2e-plain")
	e.ok("remote", "add", "plain", plain, "--endpoint", srv.Endpoint, "--no-encryption")
	e.extra = creds
	e.on(na, "push", "plain", "app")
	e.on(nb, "clone", "plain", "app", "--local-name", "app-plain")
	if a, b := readTree(t, dir), readTree(t, e.pathOn(nb, "app-plain")); !sameTree(a, b) {
		t.Fatal("the clone from a plain bucket differs")
	}
}

// TestBucketMaintenanceS3: what a bucket holds, read by dm itself against
// a real S3 server: list and log agree with the node that pushed, gc
// --keep (and --dry-run) removes the older commit, verify passes and then
// names a damaged object, exiting 8.
func TestBucketMaintenanceS3(t *testing.T) {
	srv := s3test.Start(t)
	na := startServe(t, "a", "127.0.0.1")
	e := newEnv(t)
	e.addRemote(na)
	e.extra = []string{"AWS_ACCESS_KEY_ID=" + s3test.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3test.SecretKey, "DOTMESH_REMOTE_PASSWORD=pw-one"}
	e.ok("remote", "add", "s3", srv.URL("e2e-maint"), "--endpoint", srv.Endpoint)
	e.on(na, "init", "app")
	dir := e.pathOn(na, "app")
	big := make([]byte, 2<<20)
	rand.Read(big)
	must(t, os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644))
	e.commitOn(na, "app", "first")
	e.on(na, "push", "s3", "app")
	writeFile(t, filepath.Join(dir, "second.txt"), "second")
	e.commitOn(na, "app", "second")
	e.on(na, "push", "s3", "app")

	// What the bucket holds, read by dm itself.
	var dots []struct {
		Name     string `json:"name"`
		Branches []struct {
			Name    string `json:"name"`
			Head    string `json:"head"`
			Commits int    `json:"commits"`
			Bytes   int64  `json:"bytes"`
		} `json:"branches"`
	}
	e.jsonOut(&dots, "list", "s3")
	aLog := e.logOn(na, "app")
	if len(dots) != 1 || len(dots[0].Branches) != 1 || dots[0].Branches[0].Commits != 2 || dots[0].Branches[0].Head != aLog[0].ID || dots[0].Branches[0].Bytes < int64(len(big)) {
		t.Fatalf("dm list s3: %+v; want app with master at %s, 2 commits", dots, aLog[0].ID)
	}
	if out := e.ok("list", "s3"); !strings.Contains(out, "app") || !strings.Contains(out, "master") {
		t.Fatalf("dm list s3:\n%s", out)
	}
	var bLog []logEntry
	e.jsonOut(&bLog, "log", "--remote", "s3", "app")
	if ids(bLog) != ids(aLog) {
		t.Fatalf("dm log --remote s3 app: %s; node a has %s", ids(bLog), ids(aLog))
	}

	// gc --keep 1: the older commit goes.
	var gc struct {
		Commits int `json:"commits"`
	}
	e.jsonOut(&gc, "gc", "s3", "--keep", "1", "--dry-run")
	if gc.Commits != 1 || len(e.bucketLog("s3", "app")) != 2 {
		t.Fatalf("gc --dry-run: %+v, or it removed something", gc)
	}
	e.jsonOut(&gc, "gc", "s3", "--keep", "1")
	if got := e.bucketLog("s3", "app"); gc.Commits != 1 || len(got) != 1 || got[0].ID != aLog[0].ID {
		t.Fatalf("gc --keep 1: %+v, log %v", gc, got)
	}

	// verify, then a damaged object named, exit 8.
	e.ok("verify", "s3", "--read-data")
	st := srv.Open(t, "e2e-maint")
	var blob string
	must(t, st.List(context.Background(), "packs/", func(o bucket.ObjectInfo) error {
		if blob == "" {
			blob = o.Name
		}
		return nil
	}))
	rc, err := st.Get(context.Background(), blob, 0, -1)
	must(t, err)
	var body bytes.Buffer
	body.ReadFrom(rc)
	rc.Close()
	b := body.Bytes()
	b[len(b)/2] ^= 0x01
	must(t, st.Put(context.Background(), blob, bytes.NewReader(b), int64(len(b))))
	if r := e.dm("verify", "s3", "--read-data"); r.code != 8 || !strings.Contains(r.out, blob) {
		t.Fatalf("verify after damaging %s: %v", blob, r)
	}

}

// bucketLog is `dm log --remote NAME DOT --json`.
func (e *env) bucketLog(name, dot string) []logEntry {
	e.t.Helper()
	var out []logEntry
	e.jsonOut(&out, "log", "--remote", name, dot)
	return out
}
