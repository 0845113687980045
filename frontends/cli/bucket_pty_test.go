//go:build linux

package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the master to type into, the slave
// for dm's stdin.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("the prompt test needs a pseudo-terminal (/dev/ptmx): %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// runDMTyping runs dm with a terminal on stdin, typed into beforehand.
func runDMTyping(t *testing.T, envm map[string]string, typed string, args ...string) result {
	t.Helper()
	m, s := openPTY(t)
	if _, err := m.WriteString(typed); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Run(context.Background(), IO{Stdin: s, Stdout: &out, Stderr: &errb, Getenv: env(envm)}, testWiring, args)
	return result{out.String(), errb.String(), code}
}

// TestBucketPasswordPrompt: on a terminal the password of a new
// repository is asked twice (differing answers change nothing), and once
// to open it.
func TestBucketPasswordPrompt(t *testing.T) {
	fullBuildOnly(t, "the bucket client")
	e, cfgPath := testEnv(t)
	url := "file://" + t.TempDir()
	r := runDMTyping(t, e, "one\ntwo\n", "remote", "add", "b", url)
	if r.code != exitInvalid || !strings.HasSuffix(r.err, "Repeat it: \ndm: the passwords differ; nothing was changed\n") {
		t.Fatalf("differing passwords: %+v", r)
	}
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Fatalf("differing passwords saved a remote: %v", err)
	}
	r = runDMTyping(t, e, "pw-typed\npw-typed\n", "remote", "add", "b", url)
	if r.code != 0 || !strings.Contains(r.err, "Password for bucket remote b ("+url+"): ") || !strings.Contains(r.err, "Repeat it: ") {
		t.Fatalf("dm remote add on a terminal: %+v", r)
	}
	if strings.Contains(r.err, "pw-typed") || strings.Contains(readFile(t, cfgPath), "pw-typed") {
		t.Fatal("the typed password was echoed or saved")
	}
	if r := runDMTyping(t, e, "pw-typed\n", "remote", "key", "list", "b"); r.code != 0 || strings.Count(r.err, "Password for") != 1 {
		t.Fatalf("opening with a typed password: %+v", r)
	}
	// key add: the password that opens it, then the new one twice.
	if r := runDMTyping(t, e, "pw-typed\nsecond\nsecond\n", "remote", "key", "add", "b"); r.code != 0 || !strings.Contains(r.err, "New password for bucket remote b: ") {
		t.Fatalf("dm remote key add on a terminal: %+v", r)
	}
	if r := runDMTyping(t, e, "second\n", "remote", "key", "list", "b"); r.code != 0 {
		t.Fatalf("the added password does not open it: %+v", r)
	}
	if r := runDMTyping(t, e, "wrong\n", "remote", "key", "list", "b"); r.code != exitUnauthorized || !strings.Contains(r.err, "\ndm: bucket remote b: unauthorized: wrong password") {
		t.Fatalf("a wrong typed password: %+v", r)
	}
}
