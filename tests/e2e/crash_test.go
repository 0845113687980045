package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// tree is what a commit should hold: subdot -> file -> sha256 of content.
type tree map[string]map[string]string

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestCrashRecovery commits in a loop while the node is killed with
// SIGKILL at random moments, several times. After each restart every
// acknowledged commit must be there, and at the end every commit in the
// log must restore exactly the files written for it: no half commits.
func TestCrashRecovery(t *testing.T) { crashRecovery(t, newEnv(t)) }

// TestCrashRecoveryBtrfs: the same on btrfs, whose commit snapshots
// before it knows whether anything changed and keeps its records beside
// the data synced behind the answer.
func TestCrashRecoveryBtrfs(t *testing.T) {
	requireBtrfs(t)
	e := newEnv(t)
	t.Cleanup(func() { // after the node's kill (cleanups run last first)
		if leftover := releaseBtrfsImage(e.data); leftover != "" {
			t.Logf("after the node was killed, %s", leftover)
		}
	})
	crashRecovery(t, e, "--backend", "btrfs", "--pool-size", "1G")
}

// TestCrashRecoveryZFS: the same on zfs, whose commit is its snapshot
// first, then the check for changes.
func TestCrashRecoveryZFS(t *testing.T) {
	pool, _ := zfstest.Pool(t) // fails naming zfs-fuse when ZFS is missing
	crashRecovery(t, newEnv(t), "--backend", "zfs", "--zfs-pool", pool, "--pool-size", "1G")
}

// crashRecovery is TestCrashRecovery on a node started by `dm serve` with
// args.
func crashRecovery(t *testing.T, e *env, args ...string) {
	e.port = freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", e.port)
	serveLog := filepath.Join(t.TempDir(), "serve.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(serveLog)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("dm serve log (tail):\n%s", b)
		}
	})

	start := func() (*exec.Cmd, <-chan struct{}) {
		t.Helper()
		logf, err := os.OpenFile(serveLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd := exec.Command(dmBin, append([]string{"serve", "--data-dir", e.data, "--listen", addr}, args...)...)
		cmd.Env = e.environ()
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			select {
			case <-exited:
			default:
				cmd.Process.Kill() // this test's own child, by PID
				<-exited
			}
		})
		waitHealthy(t, addr, exited)
		return cmd, exited
	}

	cmd, exited := start()
	key, err := os.ReadFile(filepath.Join(e.data, "admin-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	e.extra = []string{"DOTMESH_PASSWORD=" + string(key)}
	e.ok("remote", "add", "local", "admin@"+addr)
	e.extra = nil
	e.ok("init", "app")
	dirs := map[string]string{"web": e.path("app.web"), "db": e.path("app.db")}

	var (
		mu       sync.Mutex
		expected = map[string]tree{} // by commit message
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	// commitLoop writes a new state, then commits it, until stop. It
	// returns the messages of the commits dm acknowledged.
	commitLoop := func(round int, seed uint64, stop <-chan struct{}) ([]string, error) {
		r := rand.New(rand.NewPCG(seed, uint64(round)))
		var acked []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				return acked, nil
			default:
			}
			msg := fmt.Sprintf("r%d-c%d", round, i)
			big := make([]byte, 64<<10+r.IntN(512<<10))
			for j := range big {
				big[j] = byte(r.UintN(256))
			}
			files := tree{
				"web": {"index.html": msg},
				"db":  {"data.bin": string(big)},
			}
			if i%2 == 1 { // deletions must be restored too
				files["db"]["extra.txt"] = "extra " + msg
			}
			for sub, fs := range files {
				os.Remove(filepath.Join(dirs[sub], "extra.txt"))
				for name, content := range fs {
					if err := os.WriteFile(filepath.Join(dirs[sub], name), []byte(content), 0o644); err != nil {
						return acked, err
					}
				}
			}
			want := tree{}
			for sub, fs := range files {
				want[sub] = map[string]string{}
				for name, content := range fs {
					want[sub][name] = hashOf(content)
				}
			}
			mu.Lock()
			expected[msg] = want
			mu.Unlock()
			c := e.cmd("commit", "-m", msg)
			if err := c.Run(); err == nil {
				acked = append(acked, msg)
			} else if _, ok := err.(*exec.ExitError); !ok {
				return acked, err
			} else {
				time.Sleep(20 * time.Millisecond) // node down: don't spin
			}
		}
	}

	checkLog := func(acked []string) {
		t.Helper()
		inLog := map[string]bool{}
		for _, c := range e.log("app") {
			if _, ok := expected[c.Message]; !ok {
				t.Fatalf("log has commit %s %q that nobody made", c.ID, c.Message)
			}
			inLog[c.Message] = true
		}
		for _, m := range acked {
			if !inLog[m] {
				t.Fatalf("acknowledged commit %q is missing after a crash", m)
			}
		}
	}

	const rounds = 6
	var allAcked []string
	for round := 0; round < rounds; round++ {
		if round > 0 {
			cmd, exited = start()
			checkLog(allAcked)
		}
		stop := make(chan struct{})
		type res struct {
			acked []string
			err   error
		}
		done := make(chan res, 1)
		loopSeed := rng.Uint64()
		go func() {
			a, err := commitLoop(round, loopSeed, stop)
			done <- res{a, err}
		}()
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
		close(stop)
		r := <-done
		if r.err != nil {
			t.Fatalf("round %d: %v", round, r.err)
		}
		allAcked = append(allAcked, r.acked...)
		t.Logf("round %d: %d commits acknowledged before SIGKILL", round, len(r.acked))
	}

	start()
	checkLog(allAcked)
	log := e.log("app")
	if len(log) == 0 || len(allAcked) == 0 {
		t.Fatalf("no commit survived %d rounds (%d acknowledged): the test proves nothing", rounds, len(allAcked))
	}
	// Newest first: each reset drops only commits already checked.
	for _, c := range log {
		e.ok("reset", "--hard", string(c.ID))
		want := expected[c.Message]
		for sub := range dirs {
			got := map[string]string{}
			for name, content := range readTree(t, e.path("app."+sub)) {
				got[name] = hashOf(content)
			}
			if !sameTree(got, want[sub]) {
				t.Fatalf("commit %s %q: subdot %s restored %v; want %v", c.ID, c.Message, sub, got, want[sub])
			}
		}
	}
	t.Logf("%d commits in the log, all restored exactly", len(log))
}
