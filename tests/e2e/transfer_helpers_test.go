package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serveNode is one `dm serve` child process on a loopback address, with
// its own data directory. Tests stop it by PID (kill), also on failure.
type serveNode struct {
	t      *testing.T
	name   string
	addr   string
	data   string
	key    string
	args   []string
	caPEM  []byte // when serving TLS
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
	bin    string // another dm binary than the one under test
}

var dockerFlagOnce sync.Once
var serveHasDockerFlag bool

// startServe starts a node listening on ip (127.0.0.x) with extra flags.
func startServe(t *testing.T, name, ip string, extra ...string) *serveNode {
	t.Helper()
	return startServeBin(t, "", name, ip, extra...)
}

// startServeBin is startServe running bin, another dm binary, when not "".
func startServeBin(t *testing.T, bin, name, ip string, extra ...string) *serveNode {
	t.Helper()
	dockerFlagOnce.Do(func() {
		out, _ := exec.Command(dmBin, "serve", "--help").CombinedOutput()
		serveHasDockerFlag = strings.Contains(string(out), "--docker-socket")
	})
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listening on %s (loopback aliases 127.0.0.x are needed): %v", ip, err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	n := &serveNode{t: t, name: name, addr: addr, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "serve.log"), bin: bin}
	n.args = append([]string{"serve", "--data-dir", n.data, "--listen", addr}, extra...)
	if serveHasDockerFlag {
		n.args = append(n.args, "--docker-socket", "")
	}
	n.start()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			if b, err := os.ReadFile(n.log); err == nil {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("node %s log (tail):\n%s", n.name, b)
			}
		}
	})
	key, err := os.ReadFile(filepath.Join(n.data, "admin-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	n.key = strings.TrimSpace(string(key))
	return n
}

func (n *serveNode) start() {
	t := n.t
	t.Helper()
	logf, err := os.OpenFile(n.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	bin := dmBin
	if n.bin != "" {
		bin = n.bin
	}
	cmd := exec.Command(bin, n.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(n.data))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { c.Wait(); close(ch) }(cmd, n.exited)
	n.waitHealthy()
}

// stop asks the node to shut down (SIGTERM, by PID), so that it releases
// mounts; it is killed when it does not exit in time.
func (n *serveNode) stop() {
	if n.cmd == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.kill()
	}
}

// kill SIGKILLs the node's process (by PID) and waits for it.
func (n *serveNode) kill() {
	if n.cmd == nil {
		return
	}
	select {
	case <-n.exited:
	default:
		n.cmd.Process.Kill()
		<-n.exited
	}
}

func (n *serveNode) httpClient() *http.Client {
	tr := &http.Transport{}
	if n.caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(n.caPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func (n *serveNode) url() string {
	if n.caPEM != nil {
		return "https://" + n.addr
	}
	return "http://" + n.addr
}

func (n *serveNode) waitHealthy() {
	t := n.t
	t.Helper()
	hc := n.httpClient()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			b, _ := os.ReadFile(n.log)
			t.Fatalf("dm serve %s exited before answering: %s", n.name, b)
		default:
		}
		if _, err := os.Stat(filepath.Join(n.data, "admin-api-key")); err == nil {
			if resp, err := hc.Get(n.url() + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dm serve %s on %s did not answer /healthz in 30s", n.name, n.addr)
}

// get calls GET path on the node with key and decodes the JSON answer
// into out (when not nil); it returns the status.
func (n *serveNode) get(path, key string, out any) int {
	n.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, n.url()+path, nil)
	req.SetBasicAuth("admin", key)
	resp, err := n.httpClient().Do(req)
	if err != nil {
		n.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			n.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// addRemote adds node n to e's client config as remote n.name.
func (e *env) addRemote(n *serveNode, flags ...string) {
	e.t.Helper()
	e.extra = []string{"DOTMESH_PASSWORD=" + n.key}
	defer func() { e.extra = nil }()
	e.ok(append([]string{"remote", "add", n.name, "admin@" + n.addr}, flags...)...)
}

// on runs dm against node n (--remote n.name) and expects success.
func (e *env) on(n *serveNode, args ...string) string {
	e.t.Helper()
	return e.ok(append([]string{"--remote", n.name}, args...)...)
}

type transferSummary struct {
	Dot      string `json:"dot"`
	Head     string `json:"head"`
	Commits  int    `json:"commits"`
	Skipped  int    `json:"skipped"`
	Bytes    int64  `json:"bytes"`
	UpToDate bool   `json:"up_to_date"`
	// ObjectsHeld: objects the receiver had already (dump have/want).
	ObjectsHeld int    `json:"objects_held"`
	Stashed     string `json:"stashed"`
}

func (e *env) transfer(n *serveNode, args ...string) transferSummary {
	e.t.Helper()
	var s transferSummary
	e.jsonOut(&s, append([]string{"--remote", n.name}, args...)...)
	return s
}

type logEntry struct {
	ID      string `json:"id"`
	Message string `json:"message"`
	Author  string `json:"author"`
	Parent  string `json:"parent"`
}

func (e *env) logOn(n *serveNode, dot string, extra ...string) []logEntry {
	e.t.Helper()
	var out []logEntry
	e.jsonOut(&out, append([]string{"--remote", n.name, "log", "--dot", dot}, extra...)...)
	return out
}

func ids(l []logEntry) string {
	var s []string
	for _, c := range l {
		s = append(s, c.ID)
	}
	return strings.Join(s, ",")
}

func (e *env) commitOn(n *serveNode, dot, msg string) {
	e.t.Helper()
	e.on(n, "commit", "--dot", dot, "-m", msg)
}

func (e *env) pathOn(n *serveNode, vol string) string {
	e.t.Helper()
	return strings.TrimSpace(e.on(n, "path", vol))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var _ = fmt.Sprintf
