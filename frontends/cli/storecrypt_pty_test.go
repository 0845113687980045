//go:build linux

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/daemon"
)

// TestStorePasswordPrompt: `dm serve --encrypt` on a terminal asks the
// new store's password twice (differing answers make nothing); later
// commands that open the store ask once, and a wrong answer is exit 6
// with the store as it was.
func TestStorePasswordPrompt(t *testing.T) {
	e, _ := testEnv(t)
	d := filepath.Join(t.TempDir(), "data")
	serve := []string{"serve", "--data-dir", d, "--listen", "127.0.0.1:0", "--docker-socket", "", "--encrypt"}

	r := runDMTyping(t, e, "one\ntwo\n", serve...)
	if r.code != exitInvalid || !strings.HasSuffix(r.err, "Repeat it: \ndm: the passwords differ; nothing was changed\n") {
		t.Fatalf("differing passwords: %+v", r)
	}
	if daemon.StoreEncrypted(d) {
		t.Fatal("differing passwords made a store")
	}

	// The node serves until its context ends.
	m, s := openPTY(t)
	m.WriteString("typed-pw\ntyped-pw\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, IO{Stdin: s, Stdout: &out, Stderr: &errb, Getenv: env(e)}, testWiring, serve)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !fileExists(filepath.Join(d, "listen.json")) {
		select {
		case code := <-done:
			t.Fatalf("dm serve --encrypt exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("dm serve --encrypt did not start within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("dm serve --encrypt: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "Password for the encrypted files store in "+filepath.Join(d, "dump")+": ") || !strings.Contains(errb.String(), "Repeat it: ") {
		t.Fatalf("no prompt in %q", errb.String())
	}
	if strings.Contains(errb.String(), "typed-pw") {
		t.Fatal("the typed password was echoed")
	}
	if !daemon.StoreEncrypted(d) {
		t.Fatal("dm serve --encrypt made no encrypted store")
	}
	key, _ := os.ReadFile(filepath.Join(d, "dump", "store.key"))

	// Opening it again asks once; a wrong password changes nothing.
	r = runDMTyping(t, e, "wrong\n", "registry", "rebuild", "--data-dir", d)
	if r.code != exitUnauthorized || strings.Count(r.err, "Password for") != 1 || !strings.Contains(r.err, "wrong password") || strings.Contains(r.err, "Repeat") {
		t.Fatalf("a wrong typed password: %+v", r)
	}
	if now, _ := os.ReadFile(filepath.Join(d, "dump", "store.key")); !bytes.Equal(now, key) {
		t.Fatal("a wrong password changed the key file")
	}
	if r = runDMTyping(t, e, "typed-pw\n", "registry", "rebuild", "--data-dir", d); r.code != 0 {
		t.Fatalf("the right typed password: %+v", r)
	}
	// Without a terminal, no password is one line naming the ways to give it.
	r = runDM(t, e, "registry", "rebuild", "--data-dir", d)
	if r.code != exitInvalid || !strings.Contains(r.err, "--password-file FILE, set "+storePasswordEnv) {
		t.Fatalf("no password and no terminal: %+v", r)
	}
	e[storePasswordEnv] = "typed-pw"
	if r = runDM(t, e, "registry", "rebuild", "--data-dir", d); r.code != 0 {
		t.Fatalf("the password from $%s: %+v", storePasswordEnv, r)
	}

	// dm store key: add a password, open with it, remove the first.
	second := filepath.Join(t.TempDir(), "second")
	os.WriteFile(second, []byte("second-pw\n"), 0o600)
	r = runDM(t, e, "store", "key", "add", "--data-dir", d, "--new-password-file", second, "--json")
	if r.code != 0 {
		t.Fatalf("dm store key add: %+v", r)
	}
	delete(e, storePasswordEnv)
	r = runDM(t, e, "store", "key", "list", "--data-dir", d, "--password-file", second, "-H")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("dm store key list: %+v", r)
	}
	var first string
	for _, l := range lines {
		if f := strings.Split(l, "\t"); len(f) == 4 && f[3] == "no" {
			first = f[0]
		}
	}
	if first == "" || !strings.Contains(r.out, "\tyes") {
		t.Fatalf("no key in use and one not: %q", r.out)
	}
	failsWith(t, runDM(t, e, "store", "key", "remove", "nothex", "--data-dir", d, "--password-file", second), "not a key id")
	if r = runDM(t, e, "store", "key", "remove", first, "--data-dir", d, "--password-file", second); r.code != 0 {
		t.Fatalf("dm store key remove: %+v", r)
	}
	e[storePasswordEnv] = "typed-pw"
	r = runDM(t, e, "store", "key", "list", "--data-dir", d)
	if r.code != exitUnauthorized {
		t.Fatalf("a removed password still opens the store: %+v", r)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	failsWith(t, runDM(t, e, "store", "key", "list", "--data-dir", plain), "not encrypted")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
