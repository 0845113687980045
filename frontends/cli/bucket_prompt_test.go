//go:build linux && !dmlight

// The light build (dmlight) leaves the bucket client to dm-node: this file's
// tests build only in the full one.

package cli

import (
	"os"
	"strings"
	"testing"
)

// TestBucketPasswordPrompt: on a terminal the password of a new
// repository is asked twice (differing answers change nothing), and once
// to open it.
func TestBucketPasswordPrompt(t *testing.T) {
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
