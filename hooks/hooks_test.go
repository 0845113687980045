package hooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/hooks"
	"github.com/dotmesh-io/dotmesh/internal/syncbuf"
)

// filesNode is a real node on the dump ("files") backend and a bbolt
// registry, with the hook runner, and one dot "app" holding a file.
type filesNode struct {
	t    *testing.T
	ctx  context.Context
	node *dotmesh.Node
	be   dotmesh.StorageBackend
	dot  dotmesh.DotName
	log  *syncbuf.Buffer
	dir  string
}

func newFilesNode(t *testing.T, runner bool) *filesNode {
	t.Helper()
	dir := t.TempDir()
	lb := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{Logger: log})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	opts := dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{be}, Logger: log}
	if runner {
		opts.Hooks = hooks.New(log)
	}
	node, err := dotmesh.NewNode(context.Background(), opts)
	if err != nil {
		be.Close()
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	f := &filesNode{t: t, ctx: context.Background(), node: node, be: be, dot: dotmesh.DotName{Namespace: "admin", Name: "app"}, log: lb, dir: dir}
	if _, err := node.CreateDot(f.ctx, f.dot, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	f.write("data.txt", "one")
	return f
}

func (f *filesNode) write(name, content string) {
	f.t.Helper()
	p, err := f.node.SubdotPath(f.ctx, dotmesh.VolumeName{Dot: f.dot})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *filesNode) set(h dotmesh.Hook) {
	f.t.Helper()
	if _, err := f.node.SetHook(f.ctx, f.dot, h); err != nil {
		f.t.Fatalf("SetHook %+v: %v", h, err)
	}
}

func (f *filesNode) commit(msg string) (*dotmesh.Commit, error) {
	return f.node.Commit(f.ctx, f.dot, "", dotmesh.CommitOptions{Message: msg, Author: "test"})
}

func (f *filesNode) history() []*dotmesh.Commit {
	f.t.Helper()
	cs, err := f.node.Log(f.ctx, f.dot, "", 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return cs
}

func (f *filesNode) stored() []dotmesh.CommitID {
	f.t.Helper()
	d, err := f.node.Dot(f.ctx, f.dot)
	if err != nil {
		f.t.Fatal(err)
	}
	ids, err := f.be.Commits(f.ctx, dotmesh.BranchRef{Dot: d.ID, Branch: dotmesh.DefaultBranch})
	if err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
		f.t.Fatal(err)
	}
	return ids
}

func sh(script string, args ...string) dotmesh.Hook {
	return dotmesh.Hook{Kind: dotmesh.HookCommand, Command: append([]string{"/bin/sh", "-c", script, "hook"}, args...)}
}

func stage(h dotmesh.Hook, s string, timeout time.Duration) dotmesh.Hook {
	h.Stage, h.Timeout = s, timeout
	return h
}

// TestPreCommitFailureAbortsCommit: a failing pre-commit hook refuses the
// commit with a HookError carrying its words; nothing is stored, in the
// registry or the backend, and the post-commit hook is told it failed.
func TestPreCommitFailureAbortsCommit(t *testing.T) {
	f := newFilesNode(t, true)
	first, err := f.commit("first")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "post.env")
	f.set(stage(sh(`echo "checking $DM_DOT@$DM_BRANCH"; echo "not ready" >&2; exit 3`), dotmesh.HookPreCommit, 0))
	f.set(stage(sh(`env | grep ^DM_ | sort > "$1"`, out), dotmesh.HookPostCommit, 0))
	f.write("data.txt", "two")
	storedBefore := f.stored()

	_, err = f.commit("second")
	var he *dotmesh.HookError
	if !errors.As(err, &he) || !errors.Is(err, dotmesh.ErrHookFailed) {
		t.Fatalf("commit with a failing pre-commit hook: %v, want a HookError", err)
	}
	if he.Stage != dotmesh.HookPreCommit || he.Hook != "/bin/sh" || !strings.Contains(he.Problem, "exit status 3") || !strings.Contains(he.Problem, "not ready") {
		t.Errorf("HookError %+v: want the stage, the program, the exit status and the hook's last words", he)
	}
	if h := f.history(); len(h) != 1 || h[0].ID != first.ID {
		t.Errorf("history after the refused commit: %d commits, head %s; want only %s", len(h), h[0].ID, first.ID)
	}
	if after := f.stored(); len(after) != len(storedBefore) {
		t.Errorf("the backend holds %d commits after the refusal, %d before", len(after), len(storedBefore))
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the post-commit hook did not run after the refused commit: %v", err)
	}
	for _, want := range []string{"DM_HOOK=post-commit", "DM_COMMIT_OUTCOME=failed", "DM_DOT=admin/app", "DM_BRANCH=master", "not ready"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("post-commit environment lacks %q:\n%s", want, env)
		}
	}
	// The hook's output is in the node's log, line by line.
	for _, want := range []string{"checking admin/app@master", "not ready"} {
		if !strings.Contains(f.log.String(), want) {
			t.Errorf("the node's log lacks the hook's output %q", want)
		}
	}
}

// TestPostCommitAfterSuccess: the post-commit hook runs after a commit,
// told its id, with the dot's directories in its environment; a
// pre-commit hook that succeeds lets the commit through.
func TestPostCommitAfterSuccess(t *testing.T) {
	f := newFilesNode(t, true)
	out := filepath.Join(t.TempDir(), "post.env")
	f.set(stage(sh(`test -f "$DM_DOT_PATH/__default__/data.txt" || test -f "$DM_SUBDOT___DEFAULT__/data.txt"`), dotmesh.HookPreCommit, 0))
	f.set(stage(sh(`env | grep ^DM_ | sort > "$1"`, out), dotmesh.HookPostCommit, 0))
	c, err := f.commit("first")
	if err != nil {
		t.Fatalf("commit with passing hooks: %v", err)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the post-commit hook did not run: %v", err)
	}
	for _, want := range []string{"DM_COMMIT_OUTCOME=committed", "DM_COMMIT=" + string(c.ID), "DM_DOT_PATH=/", "DM_SUBDOTS="} {
		if !strings.Contains(string(env), want) {
			t.Errorf("post-commit environment lacks %q:\n%s", want, env)
		}
	}
	// An unchanged dot: nothing to commit, and the hook is told so.
	if _, err := f.commit("again"); err == nil {
		t.Fatal("a commit of an unchanged dot succeeded")
	}
	env, _ = os.ReadFile(out)
	if !strings.Contains(string(env), "DM_COMMIT_OUTCOME=nothing-to-commit") {
		t.Errorf("post-commit after nothing to commit:\n%s", env)
	}
	if got := c.Info[dotmesh.InfoConsistency]; got != dotmesh.ConsistencyFileByFile {
		t.Errorf("consistency of a files dot's commit: %q, want %q", got, dotmesh.ConsistencyFileByFile)
	}
}

// TestTimeoutKillsProcessGroup: a pre-commit hook past its timeout is
// killed with everything it started (its process group), and the commit
// is refused.
func TestTimeoutKillsProcessGroup(t *testing.T) {
	f := newFilesNode(t, true)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	f.set(stage(sh(`sleep 300 & echo $! > "$1"; sleep 300`, pidFile), dotmesh.HookPreCommit, 700*time.Millisecond))
	start := time.Now()
	_, err := f.commit("slow")
	took := time.Since(start)
	var he *dotmesh.HookError
	if !errors.As(err, &he) || !strings.Contains(he.Problem, "timed out") {
		t.Fatalf("commit with a hook past its timeout: %v, want a HookError saying it timed out", err)
	}
	if took > 10*time.Second {
		t.Errorf("the commit took %s; the hook's timeout is 700ms", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the hook's child wrote no pid: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("pid file %q", b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the hook's background child %d outlived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(f.history()) != 0 {
		t.Error("a commit was made although its pre-commit hook timed out")
	}
}

// alive reports whether pid runs (a zombie, killed and not yet reaped by
// its reparented parent, counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// TestHTTPHooks: an HTTP pre-commit hook is a POST of the call as JSON;
// a non-2xx answer refuses the commit with the answer's words, a 2xx lets
// it through, and the post-commit hook is told the new commit.
func TestHTTPHooks(t *testing.T) {
	f := newFilesNode(t, true)
	var mu sync.Mutex
	var calls []hooks.Call
	ready := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c hooks.Call
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &c); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad call", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c)
		if c.Hook == dotmesh.HookPreCommit && !ready {
			http.Error(w, "replica lagging", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	f.set(dotmesh.Hook{Stage: dotmesh.HookPreCommit, Kind: dotmesh.HookHTTP, URL: srv.URL + "/pre"})
	f.set(dotmesh.Hook{Stage: dotmesh.HookPostCommit, Kind: dotmesh.HookHTTP, URL: srv.URL + "/post"})
	_, err := f.commit("refused")
	var he *dotmesh.HookError
	if !errors.As(err, &he) || !strings.Contains(he.Problem, "503") || !strings.Contains(he.Problem, "replica lagging") {
		t.Fatalf("commit refused by HTTP: %v", err)
	}
	mu.Lock()
	ready = true
	mu.Unlock()
	c, err := f.commit("accepted")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 4 {
		t.Fatalf("%d calls, want pre, post, pre, post: %+v", len(calls), calls)
	}
	if p := calls[1]; p.Hook != dotmesh.HookPostCommit || p.Outcome != dotmesh.HookFailed {
		t.Errorf("post-commit call after the refusal: %+v", p)
	}
	if p := calls[3]; p.Outcome != dotmesh.HookCommitted || p.Commit != string(c.ID) || p.Dot != "admin/app" || p.Branch != "master" {
		t.Errorf("post-commit call after the commit: %+v", p)
	}
}

// TestSetHookRefusals: bad hooks, a program the node lacks and a node
// without a runner change nothing.
func TestSetHookRefusals(t *testing.T) {
	f := newFilesNode(t, true)
	bad := []dotmesh.Hook{
		{Stage: "pre-push", Kind: dotmesh.HookCommand, Command: []string{"true"}},
		{Stage: dotmesh.HookPreCommit, Kind: dotmesh.HookPostgreSQL, URL: "postgres://x@/db"},
		{Stage: dotmesh.HookPreCommit, Kind: dotmesh.HookCommand},
		{Stage: dotmesh.HookPreCommit, Kind: dotmesh.HookCommand, Command: []string{"/no/such/program"}},
		{Stage: dotmesh.HookQuiesce, Kind: dotmesh.HookFSFreeze},
		{Stage: dotmesh.HookQuiesce, Kind: dotmesh.HookMySQL, URL: "mysql://root@nohost"},
		{Stage: dotmesh.HookQuiesce, Kind: dotmesh.HookPostgreSQL, URL: "http://x"},
		{Stage: dotmesh.HookPreCommit, Kind: dotmesh.HookCommand, Command: []string{"true"}, Timeout: 2 * time.Hour},
	}
	for _, h := range bad {
		if _, err := f.node.SetHook(f.ctx, f.dot, h); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("SetHook %+v: %v, want ErrInvalidArgument", h, err)
		}
	}
	if dh, err := f.node.Hooks(f.ctx, f.dot); err != nil || len(dh.Hooks) != 0 {
		t.Errorf("hooks after refusals: %+v, %v", dh, err)
	}
	if _, err := f.node.RemoveHook(f.ctx, f.dot, dotmesh.HookPreCommit); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Errorf("removing a hook the dot lacks: %v", err)
	}
	bare := newFilesNode(t, false)
	if _, err := bare.node.SetHook(bare.ctx, bare.dot, stage(sh("true"), dotmesh.HookPreCommit, 0)); !errors.Is(err, dotmesh.ErrNotSupported) {
		t.Errorf("SetHook on a node without a runner: %v, want ErrNotSupported", err)
	}
	// Set, list, replace, remove.
	f.set(stage(sh("true"), dotmesh.HookPreCommit, 0))
	f.set(stage(sh("exit 0"), dotmesh.HookPreCommit, time.Second))
	all, err := f.node.AllHooks(f.ctx)
	if err != nil || len(all) != 1 || len(all[0].Hooks) != 1 || all[0].Hooks[0].Command[2] != "exit 0" {
		t.Fatalf("AllHooks: %+v, %v", all, err)
	}
	if _, err := f.node.RemoveHook(f.ctx, f.dot, dotmesh.HookPreCommit); err != nil {
		t.Fatal(err)
	}
	// A deleted dot's hooks go with it.
	f.set(stage(sh("true"), dotmesh.HookPostCommit, 0))
	if err := f.node.DeleteDot(f.ctx, f.dot); err != nil {
		t.Fatal(err)
	}
	if all, err := f.node.AllHooks(f.ctx); err != nil || len(all) != 0 {
		t.Errorf("AllHooks after the dot was deleted: %+v, %v", all, err)
	}
}

// TestLogicalConsistency: a commit of a dot whose subdot is a database
// source (sqlite, dumped by its engine) records logical consistency at
// the source's snapshot instant.
func TestLogicalConsistency(t *testing.T) {
	f := newFilesNode(t, true)
	db := filepath.Join(t.TempDir(), "app.db")
	sourcetest.SQLite(t, db, "CREATE TABLE t (id integer primary key); INSERT INTO t VALUES (1);")
	if err := f.node.Sources().Add(f.ctx, dotmesh.VolumeName{Dot: f.dot, Subdot: "db"}, dotmesh.SourceSpec{Kind: "sqlite", URL: "sqlite://" + db}); err != nil {
		t.Fatal(err)
	}
	c, err := f.commit("with a database")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Info[dotmesh.InfoConsistency]; got != dotmesh.ConsistencyLogical {
		t.Fatalf("consistency %q, want %q; info %v", got, dotmesh.ConsistencyLogical, c.Info)
	}
	instant, err := time.Parse(time.RFC3339Nano, c.Info[dotmesh.InfoConsistencyInstant])
	if err != nil || c.Info[dotmesh.InfoConsistencyInstant] != c.Info["source.db.snapshot_time"] {
		t.Errorf("instant %q (%v), want the source's snapshot time %q", c.Info[dotmesh.InfoConsistencyInstant], err, c.Info["source.db.snapshot_time"])
	}
	if instant.After(c.Time.Add(time.Minute)) || c.Info[dotmesh.InfoConsistencySpread] != "0.000" {
		t.Errorf("instant %s, spread %q for one source", instant, c.Info[dotmesh.InfoConsistencySpread])
	}
}
