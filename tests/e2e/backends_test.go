package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/backendtest/pgcrash"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// The zfs and btrfs backends through the real dm and a real node: each
// test needs root and the real part (zfs-fuse, btrfs-progs and loop
// devices, PostgreSQL) and fails naming it when it is missing.

// clusterInitArgs starts the env's node with `dm cluster init` and more
// flags.
func (e *env) clusterInitArgs(args ...string) {
	e.t.Helper()
	if e.port == 0 {
		e.port = freePort(e.t)
	}
	e.ok(append([]string{"cluster", "init", "--data-dir", e.data, "--port", strconv.Itoa(e.port)}, args...)...)
	if pid, ok := nodePid(e.data); !ok || pid <= 1 {
		e.t.Fatalf("after dm cluster init no node holds %s/dm.pid", e.data)
	}
}

// stopNode stops the env's node as a user does; the kill in newEnv's
// cleanup is the fallback.
func (e *env) stopNode() {
	if _, ok := nodePid(e.data); !ok {
		return
	}
	if r := e.dm("cluster", "stop", "--data-dir", e.data, "--timeout", "20s"); r.code != 0 {
		e.t.Errorf("dm cluster stop: %v", r)
		killNode(e.t, e.data)
	}
}

// zfsEnv is a node whose default backend is zfs, on a pool of its own
// (made by the node in its data directory), destroyed after the node has
// stopped.
func zfsEnv(t *testing.T, args ...string) *env {
	t.Helper()
	e := newEnv(t)
	pool, _ := zfstest.Pool(t) // fails naming zfs-fuse when ZFS is missing
	t.Cleanup(e.stopNode)      // runs before the pool is destroyed
	e.clusterInitArgs(append([]string{"--backend", "zfs", "--zfs-pool", pool, "--pool-size", "1G"}, args...)...)
	return e
}

// requireBtrfs fails the test unless the btrfs backend can mount images.
func requireBtrfs(t *testing.T) {
	t.Helper()
	for _, n := range []string{"btrfs", "mkfs.btrfs"} {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found: btrfs-progs is not installed (apt-get install btrfs-progs); the btrfs backend tests need real btrfs", n)
		}
	}
	for _, n := range []string{"losetup", "mount", "umount"} {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found (apt-get install util-linux mount): the btrfs backend loop-mounts an image", n)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("the btrfs backend tests loop-mount images and need root")
	}
}

// btrfsEnv is a node running the btrfs backend on an image in its data
// directory. Stopping the node unmounts the image; should that fail the
// cleanup unmounts and detaches it.
func btrfsEnv(t *testing.T, args ...string) *env {
	t.Helper()
	requireBtrfs(t)
	e := newEnv(t)
	t.Cleanup(func() {
		e.stopNode()
		if leftover := releaseBtrfsImage(e.data); leftover != "" {
			t.Errorf("after the node stopped, %s", leftover)
		}
	})
	e.clusterInitArgs(append([]string{"--pool-size", "1G"}, args...)...)
	return e
}

// btrfsMounted reports whether the node's image is mounted, and the loop
// devices attached to it.
func btrfsMounted(data string) (bool, []string) {
	mnt, img := filepath.Join(data, "btrfs", "btrfs"), filepath.Join(data, "btrfs", "btrfs.img")
	var a, b syscall.Stat_t
	mounted := syscall.Stat(mnt, &a) == nil && syscall.Stat(filepath.Dir(mnt), &b) == nil && a.Dev != b.Dev
	var devs []string
	if out, err := exec.Command("losetup", "-j", img).Output(); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if dev, _, ok := strings.Cut(l, ":"); ok && strings.HasPrefix(dev, "/dev/") {
				devs = append(devs, dev)
			}
		}
	}
	return mounted, devs
}

// releaseBtrfsImage unmounts and detaches what is left of the node's
// image and says what that was ("" when nothing).
func releaseBtrfsImage(data string) string {
	mounted, devs := btrfsMounted(data)
	var left []string
	if mounted {
		mnt := filepath.Join(data, "btrfs", "btrfs")
		if exec.Command("umount", mnt).Run() != nil {
			exec.Command("umount", "-l", mnt).Run()
		}
		left = append(left, mnt+" was still mounted")
	}
	for _, d := range devs {
		exec.Command("losetup", "-d", d).Run()
		left = append(left, d+" was still attached")
	}
	return strings.Join(left, ", ")
}

// TestZFSWorkflow: a node whose default is zfs; a second dot on the
// files backend beside it.
func TestZFSWorkflow(t *testing.T) {
	e := zfsEnv(t)
	e.ok("init", "app")
	backendWorkflow(t, e, "zfs")
	e.ok("init", "notes", "--backend", "files")
	writeFile(t, filepath.Join(e.path("notes"), "todo"), "x")
	e.ok("commit", "--dot", "notes", "-m", "n1")
	if it := e.item("notes"); it.Dot.Backend != "dump" || it.Commits != 1 || it.Usage.Dirty {
		t.Fatalf("a files dot on a zfs node: %+v", it)
	}
	restartKeepsState(t, e, "zfs")
}

// TestBtrfsWorkflow: a node whose default is files with btrfs enabled;
// the dot asks for btrfs.
func TestBtrfsWorkflow(t *testing.T) {
	e := btrfsEnv(t, "--enable-backends", "btrfs")
	e.ok("init", "app", "--backend", "btrfs")
	backendWorkflow(t, e, "btrfs")
	restartKeepsState(t, e, "btrfs")
}

// backendWorkflow runs on dot app (already made, current): two subdots
// committed together, dirty state, reset, branches.
func backendWorkflow(t *testing.T, e *env, backend string) {
	t.Helper()
	web, db := e.path("app.web"), e.path("app.db")
	it := e.item("app")
	if it.Dot.Backend != backend || it.Usage.Dirty || it.Error != "" {
		t.Fatalf("new dot: %+v (want backend %s, clean)", it, backend)
	}
	state := func(n int) map[string]map[string]string {
		return map[string]map[string]string{
			"web": {"index.html": fmt.Sprintf("v%d", n), "static/app.js": "js"},
			"db":  {"customers": strings.Repeat("alice\n", n), fmt.Sprintf("table%d", n): "rows"},
		}
	}
	write := func(s map[string]map[string]string) {
		t.Helper()
		for _, dir := range []string{web, db} {
			ents, _ := os.ReadDir(dir)
			for _, ent := range ents {
				os.RemoveAll(filepath.Join(dir, ent.Name()))
			}
		}
		for f, c := range s["web"] {
			writeFile(t, filepath.Join(web, f), c)
		}
		for f, c := range s["db"] {
			writeFile(t, filepath.Join(db, f), c)
		}
	}
	check := func(what string, s map[string]map[string]string) {
		t.Helper()
		web, db = e.path("app.web"), e.path("app.db")
		if got := readTree(t, web); !sameTree(got, s["web"]) {
			t.Fatalf("%s: web holds %v, want %v", what, got, s["web"])
		}
		if got := readTree(t, db); !sameTree(got, s["db"]) {
			t.Fatalf("%s: db holds %v, want %v", what, got, s["db"])
		}
	}
	listed := func(commits int, dirty bool) {
		t.Helper()
		it := e.item("app")
		if it.Error != "" || it.Commits != commits || it.Usage.Dirty != dirty {
			t.Fatalf("dm list: %d commits, dirty %v (%q); want %d, %v", it.Commits, it.Usage.Dirty, it.Error, commits, dirty)
		}
		// 1 MiB of data is in the dot: its size says so, not much more.
		if it.Usage.Size < 1<<20 || it.Usage.Size > 8<<20 {
			t.Fatalf("dm list: size %d with 1 MiB of data", it.Usage.Size)
		}
		dirtyWord := map[bool]string{false: "no", true: "yes"}[dirty]
		row := regexp.MustCompile(fmt.Sprintf(`(?m)^\* app\s+master\s+\d+(\.\d)? MiB\s+%d\s+%s(\s|$)`, commits, dirtyWord))
		if table := e.ok("list"); !row.MatchString(table) {
			t.Fatalf("dm list, want %d commits, DIRTY %s:\n%s", commits, dirtyWord, table)
		}
	}

	// 1 MiB that no commit changes, so sizes are easy to check.
	big := filepath.Join(e.path("app.big"), "blob")
	writeFile(t, big, strings.Repeat("0123456789abcdef", 1<<16))

	write(state(1))
	listed(0, true)
	e.ok("commit", "-m", "one")
	listed(1, false)
	write(state(2))
	listed(1, true)
	e.ok("commit", "-m", "two")
	listed(2, false)
	write(state(3))
	e.ok("commit", "-m", "three")
	writeFile(t, filepath.Join(web, "index.html"), "uncommitted")
	listed(3, true)

	// reset --hard HEAD^ discards the change and commit three, in both
	// subdots at once.
	e.ok("reset", "--hard", "HEAD^")
	check("after reset --hard HEAD^", state(2))
	listed(2, false)

	// A branch from two, with a commit of its own.
	e.ok("checkout", "-b", "feature")
	web = e.path("app.web")
	writeFile(t, filepath.Join(web, "index.html"), "feature")
	e.ok("commit", "-m", "feature work")
	featureState := state(2)
	featureState["web"]["index.html"] = "feature"
	e.ok("checkout", "master")
	check("master after the feature commit", state(2))

	// Master goes back past the commit the feature started from; the
	// feature keeps its history and data.
	e.ok("reset", "--hard", "HEAD^")
	check("master reset to one", state(1))
	listed(1, false)
	e.ok("checkout", "feature")
	check("feature after master's reset", featureState)
	log := e.log("app")
	if len(log) != 3 || log[0].Message != "feature work" || log[1].Message != "two" || log[2].Message != "one" {
		t.Fatalf("feature's log after master's reset: %+v", log)
	}
	e.ok("checkout", "master")
	check("master again", state(1))
}

// restartKeepsState stops the node and starts it again without backend
// flags: the node remembers them, and the dots are as they were.
func restartKeepsState(t *testing.T, e *env, backend string) {
	t.Helper()
	e.ok("cluster", "stop", "--data-dir", e.data)
	if backend == "btrfs" {
		if mounted, devs := btrfsMounted(e.data); mounted || len(devs) > 0 {
			t.Fatalf("dm cluster stop left the btrfs image mounted (%v) or attached (%v)", mounted, devs)
		}
	}
	e.clusterInitArgs()
	it := e.item("app")
	if it.Dot.Backend != backend || it.Commits != 1 || it.Usage.Dirty || it.Branch.Name != "master" {
		t.Fatalf("after a restart without flags: %+v", it)
	}
	if got := readTree(t, e.path("app.web")); got["index.html"] != "v1" {
		t.Fatalf("after a restart: web holds %v", got)
	}
}

// cliTarget drives pgcrash through dm.
type cliTarget struct {
	e   *env
	dot string
}

func (c cliTarget) run(args ...string) (string, error) {
	r := c.e.dm(args...)
	if r.code != 0 {
		return "", fmt.Errorf("dm %s: %v", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.out), nil
}

func (c cliTarget) SubdotPath(s string) (string, error) { return c.run("path", c.dot+"."+s) }

func (c cliTarget) Commit(msg string) (string, error) {
	return c.run("commit", "--dot", c.dot, "-m", msg, "-H", "--allow-empty") // a commit at each step, changed or not
}

func (c cliTarget) ResetHard(id string) error {
	_, err := c.run("reset", "--dot", c.dot, "--hard", id)
	return err
}

// TestZFSPostgresCrashConsistency: PostgreSQL's data directory is a
// subdot of a zfs dot; `dm commit` while it writes is a crash image it
// recovers from by itself after `dm reset --hard`, atomic with the other
// subdot.
func TestZFSPostgresCrashConsistency(t *testing.T) {
	e := zfsEnv(t)
	e.ok("init", "app")
	pgcrash.Scenario(t, cliTarget{e, "app"})
}

// TestBtrfsPostgresCrashConsistency: the same on btrfs.
func TestBtrfsPostgresCrashConsistency(t *testing.T) {
	e := btrfsEnv(t, "--backend", "btrfs")
	e.ok("init", "app")
	pgcrash.Scenario(t, cliTarget{e, "app"})
}

// TestBackendMissingPart: a node whose backend lacks its part does not
// start, and dm cluster init says which part and what to do.
func TestBackendMissingPart(t *testing.T) {
	e := newEnv(t)
	e.extra = append(e.extra, "PATH=/nonexistent") // hides btrfs-progs
	r := e.fails("btrfs-progs is not installed", "cluster", "init", "--data-dir", e.data, "--port", strconv.Itoa(freePort(t)), "--backend", "btrfs")
	if !strings.Contains(r.err, "the btrfs backend cannot start") || !strings.Contains(r.err, "apt-get install btrfs-progs") {
		t.Fatalf("error does not name the backend and the fix: %q", r.err)
	}
	if _, running := nodePid(e.data); running {
		t.Fatal("a node without its backend is running")
	}
	e.fails("--pool-size", "cluster", "init", "--data-dir", e.data, "--pool-size", "big")
}
