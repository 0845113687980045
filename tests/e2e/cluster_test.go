package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

type clientConfig struct {
	CurrentRemote string `json:"current_remote"`
	Remotes       map[string]struct {
		User       string `json:"user"`
		Address    string `json:"address"`
		APIKey     string `json:"api_key"`
		CurrentDot string `json:"current_dot"`
		DataDir    string `json:"data_dir"`
	} `json:"remotes"`
}

func (e *env) readConfig() clientConfig {
	e.t.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	var c clientConfig
	if err := json.Unmarshal(b, &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestClusterLifecycle: init writes a private config; a second init is
// refused; stop stops the node; init again on the same data keeps the
// dots; reset forgets the client side and keeps the data.
func TestClusterLifecycle(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	st, err := os.Stat(e.config)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config %v mode %v; want 0600", err, st.Mode().Perm())
	}
	cfg := e.readConfig()
	key, _ := os.ReadFile(filepath.Join(e.data, "admin-api-key"))
	local := cfg.Remotes["local"]
	if cfg.CurrentRemote != "local" || local.APIKey != strings.TrimSpace(string(key)) || local.Address != "127.0.0.1:"+strconv.Itoa(e.port) || local.DataDir != e.data {
		t.Fatalf("config after cluster init: %+v", cfg)
	}
	pid, _ := nodePid(e.data)
	if v := e.ok("version"); !strings.Contains(v, "Client: dev") || !strings.Contains(v, "Server: dev") {
		t.Fatalf("dm version: %q", v)
	}

	e.fails("already runs", "cluster", "init", "--data-dir", e.data, "--port", strconv.Itoa(freePort(t)))
	if p, _ := nodePid(e.data); p != pid {
		t.Fatalf("a refused cluster init changed the node: pid %d -> %d", pid, p)
	}

	e.ok("init", "app")
	writeFile(t, filepath.Join(e.path("app.db"), "f"), "kept")
	e.ok("commit", "-m", "before restart")

	e.ok("cluster", "stop")
	if _, running := nodePid(e.data); running {
		t.Fatal("node still runs after dm cluster stop")
	}
	if err := processExists(pid); err == nil {
		t.Fatalf("process %d still exists after dm cluster stop", pid)
	}
	e.fails("local", "list")
	e.ok("cluster", "stop") // stopping a stopped node is fine

	e.clusterInit()
	if log := e.log("app"); len(log) != 1 || log[0].Message != "before restart" {
		t.Fatalf("log after restart: %+v", log)
	}
	if b, _ := os.ReadFile(filepath.Join(e.path("app.db"), "f")); string(b) != "kept" {
		t.Fatalf("working state after restart: %q", b)
	}
	if e.readConfig().Remotes["local"].CurrentDot != "app" {
		t.Fatal("restart lost the current dot")
	}
	e.ok("commit", "-m", "current dot still set", "--allow-empty")

	pid, _ = nodePid(e.data)
	e.ok("cluster", "reset")
	if _, running := nodePid(e.data); running || processExists(pid) == nil {
		t.Fatal("node still runs after dm cluster reset")
	}
	if _, err := os.Stat(e.config); !os.IsNotExist(err) {
		t.Fatalf("config still there after reset: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.data, "admin-api-key")); err != nil {
		t.Fatalf("reset removed the data: %v", err)
	}
	e.fails("no remote configured", "list")
	// The data comes back with a new init.
	e.clusterInit()
	if log := e.log("app"); len(log) != 2 {
		t.Fatalf("log after reset and init: %+v", log)
	}
}

// TestClusterInitFailures: a node that cannot start gives a one-line error
// pointing at its log, leaves no process behind and writes no config.
// TestRestartAfterKill: `dm cluster init` right after kill -9 of the node
// is never refused for the dead node (the killed process keeps its pid
// file lock for a few milliseconds after kill(2) returns), and the node
// it starts has the data.
func TestRestartAfterKill(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	writeFile(t, filepath.Join(e.path("app"), "f"), "kept")
	e.ok("commit", "-m", "one")
	for i := range 30 {
		pid, ok := nodePid(e.data)
		if !ok {
			t.Fatalf("round %d: no node holds the pid file", i)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if r := e.dm("cluster", "init", "--data-dir", e.data, "--port", strconv.Itoa(e.port)); r.code != 0 {
			t.Fatalf("round %d: restart right after kill -9 of pid %d: %v", i, pid, r)
		}
	}
	if log := e.log("app"); len(log) != 1 || log[0].Message != "one" {
		t.Fatalf("log after the restarts: %+v", log)
	}
	// A restart without --port listens where the node did.
	e.ok("cluster", "stop")
	e.ok("cluster", "init", "--data-dir", e.data)
	if a := e.readConfig().Remotes["local"].Address; a != "127.0.0.1:"+strconv.Itoa(e.port) {
		t.Fatalf("restart without --port: remote address %s, want port %d as before", a, e.port)
	}
	e.ok("list")
}

func TestClusterInitFailures(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	r := e.fails("address already in use", "cluster", "init", "--data-dir", e.data, "--port", busy)
	if !strings.Contains(r.err, filepath.Join(e.data, "dm.log")) {
		t.Fatalf("error does not point at the log: %q", r.err)
	}
	e.fails(`unknown backend "nope"`, "cluster", "init", "--data-dir", e.data, "--port", strconv.Itoa(freePort(t)), "--backend", "nope")
	if _, running := nodePid(e.data); running {
		t.Fatal("a failed cluster init left a node running")
	}
	if _, err := os.Stat(e.config); !os.IsNotExist(err) {
		t.Fatalf("a failed cluster init wrote the config: %v", err)
	}
	// A config whose "local" node still runs elsewhere is not clobbered.
	e.clusterInit()
	other := filepath.Join(t.TempDir(), "data2")
	t.Cleanup(func() { killNode(t, other) })
	e.fails("still runs", "cluster", "init", "--data-dir", other, "--port", strconv.Itoa(freePort(t)))
	if _, running := nodePid(other); running {
		t.Fatal("refused cluster init started a node")
	}
}

func processExists(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return err
	}
	// A zombie has exited; only its parent has not reaped it yet.
	if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
		return fmt.Errorf("zombie")
	}
	return nil
}

// TestRemotes: add with DOTMESH_PASSWORD is checked by a ping; a wrong key
// is refused and saves nothing; a wrong key in the config gives a clear
// one-line error (the 401 path).
func TestRemotes(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	key, _ := os.ReadFile(filepath.Join(e.data, "admin-api-key"))
	addr := "admin@127.0.0.1:" + strconv.Itoa(e.port)

	before, _ := os.ReadFile(e.config)
	e.fails("DOTMESH_PASSWORD", "remote", "add", "again", addr) // no key, no terminal
	e.extra = []string{"DOTMESH_PASSWORD=wrong-" + strings.TrimSpace(string(key))}
	e.fails("unauthorized", "remote", "add", "again", addr)
	if after, _ := os.ReadFile(e.config); !bytes.Equal(before, after) {
		t.Fatal("a refused remote add changed the config")
	}
	e.fails("no remote named again", "--remote", "again", "list")

	e.extra = []string{"DOTMESH_PASSWORD=" + strings.TrimSpace(string(key))}
	e.ok("remote", "add", "again", addr)
	e.extra = nil
	if out := e.ok("--remote", "again", "list", "-H"); !strings.HasPrefix(out, "app\t") {
		t.Fatalf("list via the added remote: %q", out)
	}
	if out := e.ok("remote"); out != "  again\n* local\n" {
		t.Fatalf("dm remote: %q", out)
	}
	v := e.ok("remote", "-v")
	if !strings.Contains(v, addr) || strings.Contains(v, strings.TrimSpace(string(key))) {
		t.Fatalf("dm remote -v: %q", v)
	}
	e.fails("exists already", "remote", "add", "again", addr)

	// The 401 path: a key that the node no longer accepts.
	var raw map[string]any
	b, _ := os.ReadFile(e.config)
	json.Unmarshal(b, &raw)
	raw["remotes"].(map[string]any)["again"].(map[string]any)["api_key"] = "not-the-key-not-the-key-not-the-key"
	b, _ = json.Marshal(raw)
	os.WriteFile(e.config, b, 0o600)
	e.ok("remote", "switch", "again")
	e.fails("refused the API key", "list")
	e.fails("refused the API key", "init", "newdot")
	e.ok("remote", "switch", "local")
	if items := e.list(); len(items) != 1 {
		t.Fatalf("a refused request changed the dots: %+v", items)
	}
	e.ok("remote", "rm", "again")
	if out := e.ok("remote"); out != "* local\n" {
		t.Fatalf("after rm: %q", out)
	}
}

// TestConcurrentCommits: dm processes committing to one branch at the
// same time all succeed, and every commit is in the log.
func TestConcurrentCommits(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	writeFile(t, filepath.Join(e.path("app.db"), "f"), "x")
	const rounds, procs = 3, 3
	for r := 0; r < rounds; r++ {
		var wg sync.WaitGroup
		outs := make([][]byte, procs)
		errs := make([]error, procs)
		// Start them all, then wait: they overlap on the node.
		for i := 0; i < procs; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				outs[i], errs[i] = e.cmd("commit", "-m", fmt.Sprintf("r%d-p%d", r, i), "--allow-empty").CombinedOutput()
			}(i)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("concurrent commit %d of round %d: %v: %s", i, r, err, outs[i])
			}
		}
	}
	log := e.log("app")
	if len(log) != rounds*procs {
		t.Fatalf("log has %d commits; want %d", len(log), rounds*procs)
	}
	seen := map[string]bool{}
	for i, c := range log {
		seen[c.Message] = true
		// A linear history: each commit's parent is the next one.
		if i+1 < len(log) && c.Parent != log[i+1].ID {
			t.Fatalf("commit %s's parent %s is not the next commit %s", c.ID, c.Parent, log[i+1].ID)
		}
	}
	for r := 0; r < rounds; r++ {
		for i := 0; i < procs; i++ {
			if m := fmt.Sprintf("r%d-p%d", r, i); !seen[m] {
				t.Fatalf("commit %s missing from the log", m)
			}
		}
	}
}

// TestClusterInitTLS: dm cluster init --tls-cert/--tls-key serves HTTPS
// and pins --tls-ca in the remote "local"; plain HTTP gets nowhere, and
// half the TLS flags are refused before anything starts.
func TestClusterInitTLS(t *testing.T) {
	dir := t.TempDir()
	caPEM, cert, key := makeCA(t, dir, "127.0.0.1")
	ca := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(ca, caPEM, 0o644))
	e := newEnv(t)
	e.fails("--tls-cert and --tls-key go together", "cluster", "init", "--data-dir", e.data, "--port", strconv.Itoa(freePort(t)), "--tls-cert", cert)
	if _, running := nodePid(e.data); running {
		t.Fatal("a refused cluster init started a node")
	}
	e.clusterInitArgs("--tls-cert", cert, "--tls-key", key, "--tls-ca", ca)
	e.ok("init", "app")
	if out := e.ok("list"); !strings.Contains(out, "app") {
		t.Fatalf("dm list over HTTPS: %q", out)
	}
	var cfg struct {
		Remotes map[string]struct {
			TLS    bool   `json:"tls"`
			CACert string `json:"ca_cert"`
		} `json:"remotes"`
	}
	b, err := os.ReadFile(e.config)
	must(t, err)
	must(t, json.Unmarshal(b, &cfg))
	if l := cfg.Remotes["local"]; !l.TLS || l.CACert != string(caPEM) {
		t.Fatalf("remote local: tls %v, pins the CA %v", l.TLS, l.CACert == string(caPEM))
	}
	plainHTTP := func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", e.port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	if plainHTTP() {
		t.Fatal("the node answers plain HTTP")
	}
	// A restart without the flags serves HTTPS again, pinned as before.
	e.stopNode()
	e.clusterInitArgs()
	if out := e.ok("list"); !strings.Contains(out, "app") || plainHTTP() {
		t.Fatalf("restart without the TLS flags: list %q, plain HTTP %v", out, plainHTTP())
	}
	b, err = os.ReadFile(e.config)
	must(t, err)
	must(t, json.Unmarshal(b, &cfg))
	if l := cfg.Remotes["local"]; !l.TLS || l.CACert != string(caPEM) {
		t.Fatalf("remote local after a restart: tls %v, pins the CA %v", l.TLS, l.CACert == string(caPEM))
	}
	// --no-tls turns it off, and is remembered as that.
	e.stopNode()
	e.fails("--no-tls goes with none of", "cluster", "init", "--data-dir", e.data, "--port", strconv.Itoa(e.port), "--no-tls", "--tls-ca", ca)
	e.clusterInitArgs("--no-tls")
	if !plainHTTP() {
		t.Fatal("--no-tls: the node does not answer plain HTTP")
	}
	e.stopNode()
	e.clusterInitArgs()
	if !plainHTTP() {
		t.Fatal("after --no-tls a restart went back to HTTPS")
	}
}
