package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// checkProgressJSON checks the --progress=json lines of op on stderr:
// every line one JSON object of op, bytes never going back within a
// phase nor past a known total, and a last "done" line at 100%. It
// returns the phases seen, in order.
func checkProgressJSON(t *testing.T, stderr, op string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatalf("%s --progress=json printed nothing on stderr", op)
	}
	var phases []string
	var prev progressEvent
	for i, l := range lines {
		var ev progressEvent
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("%s: line %d is not a progress object: %v: %q", op, i+1, err, l)
		}
		if ev.Op != op || ev.Phase == "" || ev.Bytes < 0 || ev.Total < 0 || ev.ElapsedMS < 0 {
			t.Fatalf("%s: line %d: %+v", op, i+1, ev)
		}
		if ev.Total > 0 && ev.Bytes > ev.Total {
			t.Fatalf("%s: line %d passes its total: %+v", op, i+1, ev)
		}
		if i > 0 && ev.Phase == prev.Phase && (ev.Bytes < prev.Bytes || ev.ElapsedMS < prev.ElapsedMS) {
			t.Fatalf("%s: line %d goes back: %+v after %+v", op, i+1, ev, prev)
		}
		if len(phases) == 0 || phases[len(phases)-1] != ev.Phase {
			phases = append(phases, ev.Phase)
		}
		prev = ev
	}
	if prev.Phase != "done" || prev.Bytes != prev.Total {
		t.Fatalf("%s: the last line is not done at 100%%: %+v", op, prev)
	}
	return phases
}

// withPeer is withNode with a second node, the remote b.
func withPeer(t *testing.T) map[string]string {
	t.Helper()
	e, _ := withNode(t)
	b := servertest.Start(t)
	path := filepath.Join(e["HOME"], ".dotmesh", "config")
	cfg, _ := LoadConfig(path)
	cfg.Remotes["b"] = &Remote{User: "admin", Address: strings.TrimPrefix(b.URL, "http://"), APIKey: b.Key}
	writeConfig(t, path, cfg)
	return e
}

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// cancelOnBytes is a stderr that cancels the command once a progress
// line reports bytes sent.
type cancelOnBytes struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	cancel context.CancelFunc
}

func (c *cancelOnBytes) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(string(p), `"phase":"sending","bytes":`) && !strings.Contains(string(p), `"bytes":0,`) {
		c.cancel()
	}
	return len(p), nil
}

// A push interrupted after data moved says on the user's terminal that
// running it again resumes; the re-run does.
func TestInterruptedPushSaysItResumes(t *testing.T) {
	e := withPeer(t)
	mustRun(t, e, "init", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app.web"))
	writeRandom(t, filepath.Join(p, "big"), 64<<20)
	mustRun(t, e, "commit", "-m", "big")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &cancelOnBytes{cancel: cancel}
	var out bytes.Buffer
	code := Run(ctx, IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: stderr, Getenv: env(e)}, testWiring, []string{"--progress=json", "push", "b"})
	stderr.mu.Lock()
	got := stderr.buf.String()
	stderr.mu.Unlock()
	if code == 0 {
		t.Fatalf("the push was not interrupted: %s", got)
	}
	if got != "dm: interrupted; what the push moved is kept, so running the same command again resumes it\n" && !strings.HasSuffix(got, "}\ndm: interrupted; what the push moved is kept, so running the same command again resumes it\n") {
		t.Fatalf("stderr of an interrupted push: %q", got)
	}
	mustRun(t, e, "push", "b")
}
