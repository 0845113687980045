// Package e2e runs the real dm binary as a user would: `dm cluster init`
// starts a real node on loopback, and every check goes through dm's output,
// exit status and the files in the subdots' working directories.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var dmBin string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "dm-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dmBin = filepath.Join(tmp, "dm")
	build := exec.Command("go", "build", "-o", dmBin, "github.com/dotmesh-io/dotmesh/cmd/dm")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dm:", err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// env is one user's world: a HOME, a client config and a node's data
// directory, all in temp dirs.
type env struct {
	t      *testing.T
	home   string
	config string
	data   string
	port   int
	extra  []string // more environment, like DOTMESH_PASSWORD
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, home: filepath.Join(root, "home"), config: filepath.Join(root, "config"), data: filepath.Join(root, "data")}
	os.MkdirAll(e.home, 0o700)
	// Whatever node a test leaves in its data dir is stopped, even when
	// the test fails half way.
	t.Cleanup(func() { killNode(t, e.data) })
	return e
}

type result struct {
	out, err string
	code     int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
}

func (e *env) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "DOTMESH_") {
			continue
		}
		out = append(out, kv)
	}
	return append(append(out, "HOME="+e.home), e.extra...)
}

// cmd prepares dm with the env's config file. stdin is /dev/null: no
// terminal, as in a script.
func (e *env) cmd(args ...string) *exec.Cmd {
	c := exec.Command(dmBin, append([]string{"-c", e.config}, args...)...)
	c.Env = e.environ()
	return c
}

// dmTimeout bounds one dm command.
const dmTimeout = 5 * time.Minute

func (e *env) dm(args ...string) result {
	e.t.Helper()
	c := e.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		e.t.Fatalf("running dm %v: %v", args, err)
	}
	// A part that hangs (a deadlocked zfs-fuse, say) fails the test
	// instead of the whole run.
	hung := time.AfterFunc(dmTimeout, func() { c.Process.Kill() })
	err := c.Wait()
	if !hung.Stop() {
		e.t.Fatalf("dm %v did not finish within %s and was killed; is a part it uses (zfs-fuse, a database) hung? stderr: %q", args, dmTimeout, errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running dm %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs dm and fails the test unless it succeeds; it returns stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.dm(args...)
	if r.code != 0 {
		e.t.Fatalf("dm %s: %v", strings.Join(args, " "), r)
	}
	return r.out
}

// fails runs dm and checks it fails with one line "dm: ...want...".
func (e *env) fails(want string, args ...string) result {
	e.t.Helper()
	r := e.dm(args...)
	if r.code == 0 {
		e.t.Fatalf("dm %s succeeded; want an error with %q: %v", strings.Join(args, " "), want, r)
	}
	if !strings.HasPrefix(r.err, "dm: ") || strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, want) {
		e.t.Fatalf("dm %s: stderr %q; want one line \"dm: ...%s...\"", strings.Join(args, " "), r.err, want)
	}
	return r
}

// jsonOut runs dm --json and decodes its output into v.
func (e *env) jsonOut(v any, args ...string) string {
	e.t.Helper()
	out := e.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("dm %v --json: %v in %q", args, err, out)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// clusterInit starts the env's node with `dm cluster init`.
func (e *env) clusterInit() {
	e.t.Helper()
	if e.port == 0 {
		e.port = freePort(e.t)
	}
	e.ok("cluster", "init", "--data-dir", e.data, "--port", strconv.Itoa(e.port))
	if pid, ok := nodePid(e.data); !ok || pid <= 1 {
		e.t.Fatalf("after dm cluster init no node holds %s/dm.pid", e.data)
	}
}

// nodePid returns the PID of the node whose pid file in dir is locked.
func nodePid(dir string) (int, bool) {
	f, err := os.Open(filepath.Join(dir, "dm.pid"))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		return 0, false
	}
	b, _ := os.ReadFile(f.Name())
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil
}

// killNode SIGKILLs the node running in dir, if any: only the PID that
// holds that data dir's pid file, which is a process this test started.
func killNode(t *testing.T, dir string) {
	pid, ok := nodePid(dir)
	if !ok || pid <= 1 {
		return
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 200; i++ {
		if _, ok := nodePid(dir); !ok {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Errorf("node pid %d in %s survived SIGKILL", pid, dir)
}

func waitHealthy(t *testing.T, addr string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("dm serve on %s exited before answering", addr)
		default:
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dm serve on %s did not answer /healthz in 30s", addr)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTree returns every regular file under dir by relative path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	return out
}

func sameTree(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// path returns the working directory of a subdot via dm path.
func (e *env) path(volume string) string {
	e.t.Helper()
	p := strings.TrimSpace(e.ok("path", volume))
	if !filepath.IsAbs(p) {
		e.t.Fatalf("dm path %s printed %q, not an absolute path", volume, p)
	}
	return p
}

func (e *env) log(dot string) []dotmesh.Commit {
	e.t.Helper()
	var cs []dotmesh.Commit
	e.jsonOut(&cs, "log", "--dot", dot)
	return cs
}

type listItem struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	dotmesh.DotStatus
}

func (e *env) list() []listItem {
	e.t.Helper()
	var items []listItem
	e.jsonOut(&items, "list")
	return items
}

func (e *env) item(dot string) listItem {
	e.t.Helper()
	for _, it := range e.list() {
		if it.Name == dot {
			return it
		}
	}
	e.t.Fatalf("dm list has no dot %s", dot)
	return listItem{}
}
