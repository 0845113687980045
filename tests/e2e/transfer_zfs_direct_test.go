package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// directReceives counts the commits n received on the bare connection
// (its log's "received commit" lines with direct true).
func directReceives(t *testing.T, n *serveNode) int {
	t.Helper()
	b, err := os.ReadFile(n.log)
	must(t, err)
	return len(regexp.MustCompile(`received commit.*direct["=:]+true`).FindAll(b, -1))
}

// zfsTrio starts zfs nodes z1 and z2 over plain HTTP and z3 over TLS, on
// pools of their own, and commits dot app (4 MiB) on z1; db is its
// working directory there.
func zfsTrio(t *testing.T) (e *env, z1, z2, z3 *serveNode, db string) {
	t.Helper()
	zfstest.Require(t)
	p1, _ := zfstest.Pool(t)
	p2, _ := zfstest.Pool(t)
	p3, _ := zfstest.Pool(t)
	dir := t.TempDir()
	caPEM, certFile, keyFile := makeCA(t, dir, "127.0.0.3")
	z1 = startServe(t, "z1", "127.0.0.1", "--backend", "zfs", "--zfs-pool", p1, "--pool-size", "1G")
	z2 = startServe(t, "z2", "127.0.0.2", "--backend", "zfs", "--zfs-pool", p2, "--pool-size", "1G")
	z3 = startServeTLS(t, "z3", "127.0.0.3", caPEM, certFile, keyFile, "--backend", "zfs", "--zfs-pool", p3, "--pool-size", "1G")
	e = newEnv(t)
	e.addRemote(z1)
	e.addRemote(z2)
	must(t, os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o644))
	e.addRemote(z3, "--ca-cert", filepath.Join(dir, "ca.pem"))

	e.on(z1, "init", "app")
	db = e.pathOn(z1, "app.db")
	must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(3, 4<<20), 0o644))
	e.commitOn(z1, "app", "one")
	return e, z1, z2, z3, db
}

// TestTransferZFSDirect: an incremental zfs push between plain-HTTP nodes
// carries the native stream on the bare connection; the first (complete)
// commit and every commit to a TLS node go framed; all arrive whole.
func TestTransferZFSDirect(t *testing.T) {
	e, z1, z2, z3, db := zfsTrio(t)
	if s := e.transfer(z1, "push", "z2", "app"); s.Commits != 1 {
		t.Fatalf("first push: %+v", s)
	}
	if n := directReceives(t, z2); n != 0 {
		t.Fatalf("the complete first commit went direct (%d)", n)
	}
	for i, v := range []string{"v2", "v3"} {
		must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(uint64(4+i), 4<<20), 0o644))
		writeFile(t, filepath.Join(db, "small"), v)
		e.commitOn(z1, "app", v)
		s := e.transfer(z1, "push", "z2", "app")
		if s.Commits != 1 || s.Bytes < 4<<20 || s.Bytes > 5<<20 {
			t.Fatalf("incremental push %s: %+v; want one commit of about 4 MiB", v, s)
		}
		if n := directReceives(t, z2); n != i+1 {
			t.Fatalf("after push %s z2 received %d commit(s) directly; want %d", v, n, i+1)
		}
		if !sameTree(readTree(t, db), readTree(t, e.pathOn(z2, "app.db"))) {
			t.Fatalf("z2's tree differs after push %s", v)
		}
		if ids(e.logOn(z1, "app")) != ids(e.logOn(z2, "app")) {
			t.Fatalf("histories differ after push %s", v)
		}
	}

	// Over TLS: framed, increments too.
	if s := e.transfer(z1, "push", "z3", "app"); s.Commits != 3 {
		t.Fatalf("push to the TLS node: %+v", s)
	}
	writeFile(t, filepath.Join(db, "small"), "v4")
	e.commitOn(z1, "app", "v4")
	if s := e.transfer(z1, "push", "z3", "app"); s.Commits != 1 {
		t.Fatalf("incremental push to the TLS node: %+v", s)
	}
	if n := directReceives(t, z3); n != 0 {
		t.Fatalf("the TLS node received %d commit(s) directly", n)
	}
	if !sameTree(readTree(t, db), readTree(t, e.pathOn(z3, "app.db"))) {
		t.Fatal("z3's tree differs")
	}
	if ids(e.logOn(z1, "app")) != ids(e.logOn(z3, "app")) {
		t.Fatal("histories differ on z3")
	}
}

// childWith reports whether a child of pid runs a command line holding
// every one of words.
func childWith(pid int, words ...string) bool {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		all := true
		for _, w := range words {
			all = all && bytes.Contains(cmdline, []byte(w))
		}
		if all {
			return true
		}
	}
	return false
}

// fuseHolds says whether the zfs-fuse daemon holds an established TCP
// connection from local to remote (either "" for any), as it does while
// it sends or receives a stream through its command socket, which
// passed it the node's end of the connection.
func fuseHolds(local, remote string) bool {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(l)
			if len(fs) < 10 || fs[3] != "01" { // ESTABLISHED
				continue
			}
			if (local == "" || fs[1] == procAddr(local)) && (remote == "" || fs[2] == procAddr(remote)) {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return false
	}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if comm, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "comm")); strings.TrimSpace(string(comm)) != "zfs-fuse" {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", d.Name(), "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", d.Name(), "fd", fd.Name())); err == nil && inodes[l] {
				return true
			}
		}
	}
	return false
}

// procAddr is an IPv4 host:port as /proc/net/tcp writes it.
func procAddr(hostport string) string {
	h, p, err := net.SplitHostPort(hostport)
	ip := net.ParseIP(h).To4()
	port, perr := strconv.Atoi(p)
	if err != nil || ip == nil || perr != nil {
		return hostport
	}
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], port)
}

// processWith is the pid of a process whose command line holds every
// one of words, or 0.
func processWith(words ...string) int {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		all := len(cmdline) > 0
		for _, w := range words {
			all = all && bytes.Contains(cmdline, []byte(w))
		}
		if all {
			return pid
		}
	}
	return 0
}

// TestTransferZFSDirectKilled SIGKILLs the receiving node while its zfs
// receive reads a direct stream: the push fails, the restarted node shows
// the old head, and the push run again brings the whole new commit.
func TestTransferZFSDirectKilled(t *testing.T) {
	zfstest.Require(t)
	// Restarted after the stream ended, zfs-fuse's late snapshot is there
	// for reconcile; restarted at once, it comes after reconcile, for the
	// next receive to remove.
	t.Run("restart-after-stream", func(t *testing.T) { directKilled(t, false, false) })
	t.Run("restart-at-once", func(t *testing.T) { directKilled(t, false, true) })
	// The sending node killed: its zfs command dies with it, but zfs-fuse
	// may send on; z2 stores nothing or the complete commit, and the run
	// again finishes the push.
	t.Run("sender", func(t *testing.T) { directKilled(t, true, false) })
}

// zfsPair starts zfs nodes z1 and z2 on pools of their own (running bin1
// and bin2 when not ""; z2 with flags2 more), commits dot app on z1 and
// pushes it to z2. db is app's working directory on z1.
func zfsPair(t *testing.T, bin1, bin2 string, flags2 ...string) (e *env, z1, z2 *serveNode, p1, p2, db string) {
	t.Helper()
	p1, _ = zfstest.Pool(t)
	p2, _ = zfstest.Pool(t)
	z1 = startServeBin(t, bin1, "z1", "127.0.0.1", "--backend", "zfs", "--zfs-pool", p1, "--pool-size", "1G")
	z2 = startServeBin(t, bin2, "z2", "127.0.0.2", append([]string{"--backend", "zfs", "--zfs-pool", p2, "--pool-size", "1G"}, flags2...)...)
	e = newEnv(t)
	e.addRemote(z1)
	e.addRemote(z2)
	e.on(z1, "init", "app")
	db = e.pathOn(z1, "app.db")
	writeFile(t, filepath.Join(db, "small"), "v1")
	e.commitOn(z1, "app", "one")
	if s := e.transfer(z1, "push", "z2", "app"); s.Commits != 1 {
		t.Fatalf("first push: %+v", s)
	}
	return e, z1, z2, p1, p2, db
}

func directKilled(t *testing.T, sender, atOnce bool) {
	e, z1, z2, p1, p2, db := zfsPair(t, "", "")
	before := ids(e.logOn(z2, "app"))
	must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(7, 96<<20), 0o644))
	writeFile(t, filepath.Join(db, "small"), "v2")
	e.commitOn(z1, "app", "two")
	newID := e.logOn(z1, "app")[0].ID

	push := e.cmd("--remote", "z1", "push", "z2", "app", "--json")
	var out, errb bytes.Buffer
	push.Stdout, push.Stderr = &out, &errb
	must(t, push.Start())
	done := make(chan error, 1)
	go func() { done <- push.Wait() }()
	start := time.Now()
	// Running: the victim's zfs command, or zfs-fuse holding the victim's
	// end of the stream's connection (through its command socket).
	victim, words, local, remote := z2, []string{"receive", "-F", p2}, z2.addr, ""
	if sender {
		victim, words, local, remote = z1, []string{"send", "-i", p1}, "", z2.addr
	}
	for !childWith(victim.cmd.Process.Pid, words...) && !fuseHolds(local, remote) {
		select {
		case err := <-done:
			t.Fatalf("the push ended before %s ran zfs %s (err %v): %s %s", victim.name, words[0], err, out.String(), errb.String())
		default:
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("%s ran no zfs %s in a minute", victim.name, words[0])
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // into the stream
	victim.kill()
	killedAt := time.Since(start)
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		if err := <-done; err == nil {
			t.Errorf("the push succeeded although %s was killed mid-way: %s", victim.name, out.String())
		}
	}()
	// The zfs receive z2 started dies with z2 (Pdeathsig). zfs-fuse,
	// which the zfs command passed the socket to, may still finish the
	// receive behind the dead node's back: the run again below must
	// adopt or remove what it left.
	if atOnce {
		victim.start()
	}
	time.Sleep(50 * time.Millisecond)
	if pid := processWith(words...); pid != 0 {
		t.Errorf("the killed %s's zfs %s (pid %d) still runs", victim.name, words[0], pid)
	}
	<-pushed
	t.Logf("killed %s %s into the push; push said: %s", victim.name, killedAt.Round(time.Millisecond), bytes.TrimSpace(errb.Bytes()))
	if sender {
		// zfs-fuse may send on, but the stream ends: z2's receive with it.
		if what := waitNoReceive(30*time.Second, p2, z2.addr); what != "" {
			t.Errorf("z2's %s runs on 30 s after the sender died", what)
		}
	}
	if all := zfstest.ZFS(t, "list", "-H", "-o", "name", "-t", "all", "-r", p2); strings.Contains(all, newID) {
		t.Logf("zfs-fuse completed the receive after %s died: %s", victim.name, all)
	}
	if !atOnce {
		victim.start()
	}
	old := true
	if got := ids(e.logOn(z2, "app")); got != before {
		// Only a sender's death may let the whole commit arrive.
		if old = false; !sender || got != ids(e.logOn(z1, "app")) {
			t.Fatalf("after the crash z2's history is %s, want the old one %s", got, before)
		}
	}
	// With the sender dead, zfs-fuse may still send the whole stream
	// (the zfs command handed it the socket) and z2 store it, awaiting
	// the Finish the dead sender never asked for: the working state may
	// show it, as after a framed receive.
	if got, _ := os.ReadFile(filepath.Join(e.pathOn(z2, "app.db"), "small")); old && !sender && string(got) != "v1" {
		t.Fatalf("after the crash z2 has %q, want the old v1", got)
	}
	if s := e.transfer(z1, "push", "z2", "app"); s.Commits > 1 || !old && s.Commits != 0 || !sender && s.Commits != 1 {
		t.Fatalf("push run again: %+v", s)
	}
	if !sameTree(readTree(t, db), readTree(t, e.pathOn(z2, "app.db"))) {
		t.Fatal("z2's tree differs after the push run again")
	}
	if ids(e.logOn(z1, "app")) != ids(e.logOn(z2, "app")) {
		t.Fatal("histories differ after the push run again")
	}
	if n := directReceives(t, z2); n < 1 {
		t.Fatal("no commit came direct: the test proves nothing")
	}
	if b, err := os.ReadFile(z2.log); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "removing") || strings.Contains(l, "received commit") {
				t.Log(l) // who removed the late snapshot
			}
		}
	}
	known := ids(e.logOn(z2, "app"))
	for _, l := range strings.Split(zfstest.ZFS(t, "list", "-H", "-o", "name", "-t", "snapshot", "-r", p2), "\n") {
		if _, snap, ok := strings.Cut(l, "@"); ok && !strings.Contains(known, snap) {
			t.Errorf("snapshot %s is no commit of z2's", l)
		}
	}
}

// oldNodeCommit is the commit of main the direct path grew from: its
// nodes know no api.DirectProtocol.
const oldNodeCommit = "a4261d68b263840e20ec06723ddf07b1d7cf5588"

// oldNode is a dm binary of the version before the direct path:
// DM_E2E_OLD_NODE when set, else built from oldNodeCommit (oldNodeAt).
func oldNode(t *testing.T) string {
	t.Helper()
	return oldNodeAt(t, oldNodeCommit, "DM_E2E_OLD_NODE")
}

// oldNodeAt is a dm binary of an earlier version: the one the
// environment variable env names when set, else ./cmd/dm built from
// commit of this checkout's git history into a temp dir (removed with the
// test). A history without that commit (a shallow clone) fails the test,
// saying so.
func oldNodeAt(t *testing.T, commit, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		return p
	}
	start := time.Now()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("the mixed-versions test builds the old node from this checkout's git history: git rev-parse: %v (no git, or no repository: set %s to a dm binary built from commit %s)", err, env, commit)
	}
	repo := strings.TrimSpace(string(top))
	if err := exec.Command("git", "-C", repo, "cat-file", "-e", commit+"^{commit}").Run(); err != nil {
		t.Fatalf("the git history of %s lacks commit %s, which the old node is built from (a shallow clone? `git fetch --unshallow`), or set %s to a dm binary built from it", repo, commit, env)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	must(t, os.Mkdir(src, 0o755))
	archive := exec.Command("git", "-C", repo, "archive", commit)
	untar := exec.Command("tar", "-x", "-C", src)
	untar.Stdin, err = archive.StdoutPipe()
	must(t, err)
	var stderr bytes.Buffer
	archive.Stderr, untar.Stderr = &stderr, &stderr
	must(t, untar.Start())
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v: %s", commit, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("unpacking commit %s: %v: %s", commit, err, stderr.String())
	}
	bin := filepath.Join(dir, "dm-old")
	// -trimpath: the temp dir's name is in no cache key, so a later run
	// takes every package from the build cache (5.7 s here, 16-65 s cold).
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", bin, "./cmd/dm")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the old node from commit %s: %v: %s", commit, err, out)
	}
	t.Logf("built the old node from commit %.12s in %s", commit, time.Since(start).Round(time.Millisecond))
	return bin
}

// TestTransferZFSDirectMixedVersions pushes an increment between this
// build and a node of the version before the direct path (oldNode), each
// way: it goes the framed way, and the old node's storage holds nothing
// but its commits.
func TestTransferZFSDirectMixedVersions(t *testing.T) {
	zfstest.Require(t)
	old := oldNode(t)
	for _, oldRecv := range []bool{true, false} {
		t.Run(map[bool]string{true: "old-receiver", false: "old-sender"}[oldRecv], func(t *testing.T) {
			b1, b2 := "", old
			if !oldRecv {
				b1, b2 = old, ""
			}
			e, z1, z2, p1, p2, db := zfsPair(t, b1, b2)
			must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(3, 8<<20), 0o644))
			e.commitOn(z1, "app", "two")
			if s := e.transfer(z1, "push", "z2", "app"); s.Commits != 1 {
				t.Fatalf("incremental push: %+v", s)
			}
			if !sameTree(readTree(t, db), readTree(t, e.pathOn(z2, "app.db"))) {
				t.Fatal("z2's tree differs")
			}
			known := ids(e.logOn(z2, "app"))
			if ids(e.logOn(z1, "app")) != known {
				t.Fatal("histories differ")
			}
			if n := directReceives(t, z2); n != 0 {
				t.Fatalf("%d commit(s) came direct between versions", n)
			}
			for _, p := range []string{p1, p2} {
				all := zfstest.ZFS(t, "list", "-H", "-o", "name", "-t", "all", "-r", p)
				for _, l := range strings.Split(all, "\n") {
					if _, snap, ok := strings.Cut(l, "@"); ok && !strings.Contains(known, snap) || strings.Contains(l, "%") {
						t.Errorf("%s is no commit's storage:\n%s", l, all)
					}
				}
			}
		})
	}
}
