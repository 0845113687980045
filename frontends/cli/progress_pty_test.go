//go:build linux

package cli

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// runDMOnTerminal runs dm with stderr on a terminal and returns what the
// terminal showed.
func runDMOnTerminal(t *testing.T, envm map[string]string, args ...string) (result, string) {
	t.Helper()
	m, s := openPTY(t)
	shown := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, m) // ends with EIO once the slave is closed
		shown <- b.String()
	}()
	var out bytes.Buffer
	code := Run(context.Background(), IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: s, Getenv: env(envm)}, testWiring, args)
	s.Close()
	return result{out: out.String(), code: code}, <-shown
}

// On a terminal a long command draws its bar (percent, phase, bytes) and
// clears it before its own message; without a terminal it prints
// nothing unless asked (TestProgressJSONOfLongCommands).
func TestProgressBarOnTerminal(t *testing.T) {
	e, _ := withNode(t)
	mustRun(t, e, "init", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app.web"))
	writeRandom(t, filepath.Join(p, "big"), 8<<20)

	r, term := runDMOnTerminal(t, e, "commit", "-m", "one")
	if r.code != 0 || !strings.Contains(r.out, "one") {
		t.Fatalf("commit on a terminal: %+v", r)
	}
	for _, want := range []string{"\r\033[K", "100% commit hashing  8 MiB", "/s"} {
		if !strings.Contains(term, want) {
			t.Fatalf("the terminal lacks %q: %q", want, term)
		}
	}
	if !strings.HasSuffix(term, "\r\033[K") {
		t.Fatalf("the bar is not cleared at the end: %q", term)
	}
	writeRandom(t, filepath.Join(p, "big"), 1<<20)
	if _, term := runDMOnTerminal(t, e, "reset", "--hard", "HEAD"); !strings.Contains(term, "100% reset writing  8 MiB") {
		t.Fatalf("reset's bar: %q", term)
	}
	// --progress=none and -H keep the terminal clean.
	for _, args := range [][]string{{"--progress=none", "verify"}, {"verify", "-H"}} {
		if r, term := runDMOnTerminal(t, e, args...); r.code != 0 || term != "" {
			t.Fatalf("dm %v drew on the terminal: %q (%+v)", args, term, r)
		}
	}
	// Not a terminal: nothing by default.
	if r := runDM(t, e, "verify"); r.code != 0 || r.err != "" {
		t.Fatalf("verify without a terminal: %+v", r)
	}
}
