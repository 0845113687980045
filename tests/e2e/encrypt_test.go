package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEncryptedStore: `dm cluster init --encrypt` with the real binary:
// the password from a file, the environment and missing; a wrong one
// refused at start with exit 6; nothing of the committed content under
// the store but in the working state; a restart restores every dot; zfs
// refused; a plain data directory not converted.
func TestEncryptedStore(t *testing.T) {
	e := newEnv(t)
	e.port = freePort(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	must(t, os.WriteFile(pw, []byte("correct horse\n"), 0o600))
	bad := filepath.Join(dir, "bad")
	must(t, os.WriteFile(bad, []byte("wrong\n"), 0o600))
	port := strconv.Itoa(e.port)

	r := e.fails("not sealed by dotmesh", "cluster", "init", "--data-dir", e.data, "--port", port, "--encrypt", "--backend", "zfs", "--password-file", pw)
	if r.code != 9 {
		t.Fatalf("--encrypt --backend zfs: exit %d, want 9", r.code)
	}
	e.ok("cluster", "init", "--data-dir", e.data, "--port", port, "--encrypt", "--password-file", pw)
	e.ok("init", "app")
	marker := "MARKER-e2e-encrypted-" + strconv.Itoa(os.Getpid())
	content := append([]byte(marker+"\n"), randomBytes(9, 1<<20)...)
	must(t, os.WriteFile(filepath.Join(e.path("app"), "data.bin"), content, 0o644))
	e.ok("commit", "-m", "sealed commit")
	e.ok("cluster", "stop", "--data-dir", e.data)

	// Only the working state holds the content.
	var holders []string
	filepath.Walk(filepath.Join(e.data, "dump"), func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			os.Chmod(p, 0o600)
			b, _ = os.ReadFile(p)
		}
		if bytes.Contains(b, []byte(marker)) || bytes.Contains(b, content[len(content)-64:]) {
			holders = append(holders, p)
		}
		return nil
	})
	if len(holders) != 1 || !strings.Contains(holders[0], string(filepath.Separator)+"tree"+string(filepath.Separator)) {
		t.Fatalf("files holding the content: %v (want only the working tree's)", holders)
	}

	key, _ := os.ReadFile(filepath.Join(e.data, "dump", "store.key"))
	r = e.fails("wrong password", "cluster", "init", "--data-dir", e.data, "--password-file", bad)
	if r.code != 6 {
		t.Fatalf("wrong password: exit %d, want 6", r.code)
	}
	if _, running := nodePid(e.data); running {
		t.Fatal("a node runs after a wrong password")
	}
	if now, _ := os.ReadFile(filepath.Join(e.data, "dump", "store.key")); !bytes.Equal(now, key) {
		t.Fatal("a wrong password changed the key file")
	}
	r = e.fails("no password", "cluster", "init", "--data-dir", e.data)
	if r.code != 3 {
		t.Fatalf("no password: exit %d, want 3", r.code)
	}
	// A direct serve with a wrong password fails at start too.
	// (It logs as it starts: the error is its last line.)
	r = e.dm("serve", "--data-dir", e.data, "--listen", "127.0.0.1:"+port, "--password-file", bad, "--docker-socket", "")
	if lines := strings.Split(strings.TrimSpace(r.err), "\n"); r.code != 6 || !strings.HasPrefix(lines[len(lines)-1], "dm: ") || !strings.Contains(lines[len(lines)-1], "wrong password") {
		t.Fatalf("serve with a wrong password: %v, want exit 6 and the reason last", r)
	}

	e.extra = []string{"DOTMESH_STORE_PASSWORD=correct horse"}
	e.ok("cluster", "init", "--data-dir", e.data)
	e.extra = nil
	if l := e.log("app"); len(l) != 1 || l[0].Message != "sealed commit" {
		t.Fatalf("log after restart: %+v", l)
	}
	// A new branch's working state is restored from the sealed store.
	e.ok("checkout", "--dot", "app", "-b", "restored")
	got, err := os.ReadFile(filepath.Join(e.path("app"), "data.bin"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("restored content differs: %v", err)
	}

	// The running node changes its keys itself: a second password added,
	// then the first removed once the node runs with the second.
	pw2 := filepath.Join(dir, "pw2")
	must(t, os.WriteFile(pw2, []byte("battery staple\n"), 0o600))
	added := strings.TrimSpace(e.ok("store", "key", "add", "--new-password-file", pw2, "-H"))
	var first string
	keys := strings.Split(strings.TrimSpace(e.ok("store", "key", "list", "-H")), "\n")
	for _, l := range keys {
		if f := strings.Split(l, "\t"); len(f) == 4 && f[3] == "yes" {
			first = f[0]
		}
	}
	if len(keys) != 2 || first == "" || first == added {
		t.Fatalf("keys of the running node after an add: %q (added %s)", keys, added)
	}
	if r := e.fails("opened the store with", "store", "key", "remove", first); r.code != 5 {
		t.Fatalf("removing the running node's own key without --force: exit %d, want 5", r.code)
	}
	e.ok("cluster", "stop", "--data-dir", e.data)
	e.ok("cluster", "init", "--data-dir", e.data, "--password-file", pw2)
	e.ok("store", "key", "remove", first)
	if keys := strings.TrimSpace(e.ok("store", "key", "list", "-H")); !strings.HasPrefix(keys, added+"\t") || strings.Contains(keys, "\n") {
		t.Fatalf("keys after removing the first: %q", keys)
	}
	e.ok("cluster", "stop", "--data-dir", e.data)
	if r := e.fails("wrong password", "cluster", "init", "--data-dir", e.data, "--password-file", pw); r.code != 6 {
		t.Fatalf("the removed password: exit %d, want 6", r.code)
	}

	// A plain data directory stays plain.
	p := newEnv(t)
	p.port = freePort(t)
	p.clusterInit()
	p.ok("init", "plain")
	p.ok("commit", "--dot", "plain", "--allow-empty", "-m", "x")
	p.ok("cluster", "stop", "--data-dir", p.data)
	p.fails("not encrypted", "cluster", "init", "--data-dir", p.data, "--encrypt", "--password-file", pw)
	p.fails("not encrypted", "cluster", "init", "--data-dir", p.data, "--password-file", pw)
}

// TestEncryptedPushPull: push and pull between an encrypted node and a
// plain one (streams are not sealed by the store).
func TestEncryptedPushPull(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	must(t, os.WriteFile(pw, []byte("pw\n"), 0o600))
	a := startServe(t, "a", "127.0.0.1", "--encrypt", "--password-file", pw)
	b := startServe(t, "b", "127.0.0.2")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(a, "init", "app")
	dir := e.pathOn(a, "app")
	must(t, os.WriteFile(filepath.Join(dir, "big"), randomBytes(2, 3<<20), 0o644))
	writeFile(t, filepath.Join(dir, "small"), "one\n")
	e.commitOn(a, "app", "first")
	e.transfer(a, "push", "b", "app")
	if got := readTree(t, e.pathOn(b, "app")); !sameTree(got, readTree(t, dir)) {
		t.Fatal("pushed tree differs")
	}
	writeFile(t, filepath.Join(e.pathOn(b, "app"), "small"), "two\n")
	e.commitOn(b, "app", "second")
	e.transfer(a, "pull", "b", "app")
	if l := e.logOn(a, "app"); len(l) != 2 || l[0].Message != "second" {
		t.Fatalf("log on the encrypted node after pull: %+v", l)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "small")); string(got) != "two\n" {
		t.Fatalf("pulled content: %q", got)
	}
	// The encrypted node restarts with its password and keeps both.
	a.stop()
	a.start()
	if l := e.logOn(a, "app"); len(l) != 2 {
		t.Fatalf("log after restart: %+v", l)
	}
	e.on(b, "clone", "a", "app", "--local-name", "back")
	if got := readTree(t, e.pathOn(b, "back")); !sameTree(got, readTree(t, dir)) {
		t.Fatal("tree cloned from the encrypted node differs")
	}
}
