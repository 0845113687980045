package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// Incoming transfers cut off by a dead sender: the receiver shows them,
// abort frees what they stored, they expire after the pin time and gc
// frees them, and a re-run within the pin time still resumes.

const abandonedPart = 50 << 20 // bytes of each commit

type incoming struct {
	Name    string    `json:"name"`
	Branch  string    `json:"branch"`
	DotID   string    `json:"dot_id"`
	New     bool      `json:"new"`
	Bytes   int64     `json:"bytes"`
	Commits int       `json:"commits"`
	Active  bool      `json:"active"`
	Updated time.Time `json:"updated"`
}

type gcOut struct {
	Expired []incoming `json:"expired_transfers"`
	Stats   struct {
		BytesRemoved int64 `json:"bytes_removed"`
	} `json:"stats"`
}

// commitParts writes parts random files of abandonedPart bytes into dot
// on n, one commit each, numbered from first.
func commitParts(e *env, n *serveNode, dot string, first, parts int) string {
	dir := e.pathOn(n, dot+".data")
	for i := first; i < first+parts; i++ {
		must(e.t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("part%d", i)), randomBytes(uint64(i+100), abandonedPart), 0o644))
		e.commitOn(n, dot, fmt.Sprintf("part %d", i))
	}
	return dir
}

// cutPush pushes dot from a to b, which has `had` of its commits, and
// SIGKILLs a, the sending side, once one more commit and a good part of
// the next arrived at b (the dump backend publishes a receive's chunks
// every 32 MiB); then a is started again.
func cutPush(t *testing.T, e *env, a, b *serveNode, dot string, had int) {
	packs := filepath.Join(b.data, "dump", "store", "packs")
	cutPushWhen(t, e, a, b, dot, had, func() int64 { return storedBytes(packs) }, abandonedPart+24<<20)
}

// cutPushWhen is cutPush where b's storage (stored) must have grown by
// more bytes before the kill.
func cutPushWhen(t *testing.T, e *env, a, b *serveNode, dot string, had int, stored func() int64, more int64) {
	t.Helper()
	push := e.cmd("--remote", a.name, "push", b.name, dot)
	var out, errb bytes.Buffer
	push.Stdout, push.Stderr = &out, &errb
	must(t, push.Start())
	done := make(chan error, 1)
	go func() { done <- push.Wait() }()
	var state struct {
		Have []string `json:"have"`
	}
	base := stored()
	start := time.Now()
	for len(state.Have) < had+1 || stored()-base < more {
		select {
		case err := <-done:
			t.Fatalf("the push ended before b had %d commits and part of another (err %v): %s %s", had+1, err, out.String(), errb.String())
		default:
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("b did not get %d commits in 2 minutes", had+1)
		}
		b.get("/v1/dots/admin/"+dot+"/transfer?branch=master", b.key, &state)
		time.Sleep(10 * time.Millisecond)
	}
	a.kill()
	if err := <-done; err == nil {
		t.Fatalf("the push succeeded although its sender was killed: %s", out.String())
	}
	t.Logf("killed the sender with %d commits on b; push said %s", len(state.Have), strings.TrimSpace(errb.String()))
	a.start()
}

func (e *env) incomingOn(n *serveNode) []incoming {
	e.t.Helper()
	var ts []incoming
	e.jsonOut(&ts, "--remote", n.name, "transfers")
	return ts
}

// TestAbandonedTransferAbort: a first push cut off leaves a staged dot on
// b that `dm list` and `dm transfers` show; gc within the pin time keeps
// it; `dm transfers abort` frees its storage and branch directories and
// leaves b's other dot alone; a new push then works.
func TestAbandonedTransferAbort(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(b, "init", "other")
	writeFile(t, filepath.Join(e.pathOn(b, "other"), "f"), "b's own data")
	e.commitOn(b, "other", "one")
	e.on(a, "init", "big")
	dir := commitParts(e, a, "big", 0, 4)

	cutPush(t, e, a, b, "big", 0)
	ts := e.incomingOn(b)
	if len(ts) != 1 || ts[0].Name != "big" || ts[0].Branch != "master" || !ts[0].New || ts[0].Commits < 1 || ts[0].Bytes < abandonedPart {
		t.Fatalf("b shows incoming transfers %+v; want big@master, new, with a commit and its bytes", ts)
	}
	if out := e.on(b, "list"); !strings.Contains(out, "incoming: transfer creating big@master") {
		t.Fatalf("dm list on b does not show the incoming transfer:\n%s", out)
	}
	packs := filepath.Join(b.data, "dump", "store", "packs")
	held := storedBytes(packs)
	var g gcOut
	e.jsonOut(&g, "--remote", b.name, "gc")
	if len(g.Expired) != 0 || storedBytes(packs) < held-(1<<20) {
		t.Fatalf("gc within the pin time ended %+v and freed %d bytes; want the transfer kept", g.Expired, held-storedBytes(packs))
	}
	recvDir := filepath.Join(b.data, "dump", "branches", ts[0].DotID)
	if _, err := os.Stat(recvDir); err != nil {
		t.Fatalf("the receiving storage of the transfer is not where expected: %v", err)
	}

	var res struct {
		Aborted []incoming `json:"aborted"`
		Stats   struct {
			BytesRemoved int64 `json:"bytes_removed"`
		} `json:"stats"`
	}
	e.jsonOut(&res, "--remote", b.name, "transfers", "abort", "big")
	after := storedBytes(packs)
	t.Logf("abort: %d bytes of packs before, %d after, %d reported freed", held, after, res.Stats.BytesRemoved)
	if len(res.Aborted) != 1 || res.Stats.BytesRemoved < abandonedPart || after > held-abandonedPart || after > 4<<20 {
		t.Fatalf("abort ended %+v and freed %d bytes (%d -> %d bytes of packs); want the transfer's storage freed", res.Aborted, res.Stats.BytesRemoved, held, after)
	}
	if ts := e.incomingOn(b); len(ts) != 0 {
		t.Fatalf("after abort b still shows %+v", ts)
	}
	if _, err := os.Stat(recvDir); !os.IsNotExist(err) {
		t.Fatalf("after abort the transfer's branch directory %s remains (%v)", recvDir, err)
	}
	e.fails("no incoming transfer of big", "--remote", b.name, "transfers", "abort", "big")
	if got, _ := os.ReadFile(filepath.Join(e.pathOn(b, "other"), "f")); string(got) != "b's own data" {
		t.Fatalf("b's other dot changed: %q", got)
	}
	e.on(b, "verify")

	if s := e.transfer(a, "push", "b", "big"); s.Commits != 4 {
		t.Fatalf("push after abort: %+v; want all 4 commits sent afresh", s)
	}
	if !sameTree(readTree(t, dir), readTree(t, e.pathOn(b, "big.data"))) {
		t.Fatal("b's tree differs from a's after the push")
	}
}

// TestAbandonedTransferExpires: an incremental push into a dot b has is
// cut off; with a short pin time, gc after it ends the transfer and frees
// the commits that arrived, while the dot's own commit stays intact.
func TestAbandonedTransferExpires(t *testing.T) {
	const pin = 3 * time.Second
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2", "--transfer-pin", pin.String())
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(a, "init", "big")
	commitParts(e, a, "big", 0, 1)
	e.transfer(a, "push", "b", "big")
	first := e.logOn(b, "big")
	tree := readTree(t, e.pathOn(b, "big.data"))
	packs := filepath.Join(b.data, "dump", "store", "packs")
	base := storedBytes(packs)
	commitParts(e, a, "big", 1, 4)

	cutPush(t, e, a, b, "big", 1)
	ts := e.incomingOn(b)
	if len(ts) != 1 || ts[0].New || ts[0].Commits < 1 {
		t.Fatalf("b shows incoming transfers %+v; want one into the existing big@master with a commit", ts)
	}
	held := storedBytes(packs)
	time.Sleep(time.Until(ts[0].Updated.Add(pin + time.Second)))
	var g gcOut
	e.jsonOut(&g, "--remote", b.name, "gc")
	after := storedBytes(packs)
	t.Logf("gc after the pin time: %d bytes of packs before the push, %d held, %d after; ended %+v", base, held, after, g.Expired)
	if len(g.Expired) != 1 || g.Stats.BytesRemoved < abandonedPart || after > base+(1<<20) {
		t.Fatalf("gc after the pin time ended %+v and freed %d bytes (%d -> %d, %d before the push); want the transfer's data freed", g.Expired, g.Stats.BytesRemoved, held, after, base)
	}
	if ts := e.incomingOn(b); len(ts) != 0 {
		t.Fatalf("after expiry b still shows %+v", ts)
	}
	if ids(e.logOn(b, "big")) != ids(first) || !sameTree(tree, readTree(t, e.pathOn(b, "big.data"))) {
		t.Fatal("expiry changed the dot's committed history or tree")
	}
	e.on(b, "verify")
	if s := e.transfer(a, "push", "b", "big"); s.Commits != 4 {
		t.Fatalf("push after expiry: %+v; want the 4 new commits sent", s)
	}
}

// TestAbandonedTransferResumesWithinPin: gc within the pin time leaves a
// cut-off transfer whole, and the re-run resumes it: the commits and the
// chunks that arrived are not sent again, and nothing is left incoming.
func TestAbandonedTransferResumesWithinPin(t *testing.T) {
	a := startServe(t, "a", "127.0.0.1")
	b := startServe(t, "b", "127.0.0.2", "--transfer-pin", "1h")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(a, "init", "big")
	dir := commitParts(e, a, "big", 0, 4)
	cutPush(t, e, a, b, "big", 0)
	var g gcOut
	e.jsonOut(&g, "--remote", b.name, "gc")
	if len(g.Expired) != 0 {
		t.Fatalf("gc within the pin time ended %+v", g.Expired)
	}
	s := e.transfer(a, "push", "b", "big")
	t.Logf("resumed push: %+v", s)
	if s.Skipped < 1 || s.ObjectsHeld == 0 || s.Commits+s.Skipped != 4 {
		t.Fatalf("the re-run did not resume: %+v", s)
	}
	if ts := e.incomingOn(b); len(ts) != 0 {
		t.Fatalf("after the finished push b still shows %+v", ts)
	}
	if !sameTree(readTree(t, dir), readTree(t, e.pathOn(b, "big.data"))) {
		t.Fatal("b's tree differs from a's after the resumed push")
	}
}

// TestAbandonedTransferAbortZFS and ...Btrfs: a first push from a files
// node (the neutral stream, whose receive writes the commit's files into
// a hidden working state) cut off; abort removes the staged dot's
// filesystems or subvolumes, and the space they used comes back.
func TestAbandonedTransferAbortZFS(t *testing.T) {
	zfstest.Require(t)
	pool, _ := zfstest.Pool(t)
	b := startServe(t, "z", "127.0.0.2", "--backend", "zfs", "--zfs-pool", pool, "--pool-size", "1G")
	used := func() int64 { // zfs-fuse's zfs list has no -p
		return humanBytes(t, strings.TrimSpace(zfstest.ZFS(t, "list", "-H", "-o", "used", pool)))
	}
	left := func(id string) []string {
		var out []string
		for _, l := range strings.Split(zfstest.ZFS(t, "list", "-H", "-o", "name", "-t", "all", "-r", pool), "\n") {
			if strings.Contains(l, id) {
				out = append(out, l)
			}
		}
		return out
	}
	abortOnNativeBackend(t, b, used, left)
}

func TestAbandonedTransferAbortBtrfs(t *testing.T) {
	requireBtrfs(t)
	b := startServe(t, "bt", "127.0.0.2", "--backend", "btrfs", "--pool-size", "1G")
	t.Cleanup(b.stop) // runs before startServe's kill: unmounts the image
	mnt := filepath.Join(b.data, "btrfs", "btrfs")
	used := func() int64 {
		// Deleted subvolumes are cleaned up in the background.
		must(t, exec.Command("btrfs", "subvolume", "sync", mnt).Run())
		must(t, exec.Command("btrfs", "filesystem", "sync", mnt).Run())
		out, err := exec.Command("btrfs", "filesystem", "usage", "-b", mnt).Output()
		must(t, err)
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "Used:" {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
		t.Fatalf("no Used: in btrfs filesystem usage of %s: %s", mnt, out)
		return 0
	}
	left := func(id string) []string {
		var out []string
		_ = filepath.WalkDir(mnt, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.Contains(d.Name(), id) {
				out = append(out, p)
				return filepath.SkipDir
			}
			return nil
		})
		return out
	}
	abortOnNativeBackend(t, b, used, left)
}

func abortOnNativeBackend(t *testing.T, b *serveNode, used func() int64, left func(dotID string) []string) {
	const part = 20 << 20
	a := startServe(t, "a", "127.0.0.1")
	e := newEnv(t)
	e.addRemote(a)
	e.addRemote(b)
	e.on(a, "init", "big")
	dir := e.pathOn(a, "big.data")
	for i := range 4 {
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("part%d", i)), randomBytes(uint64(i+200), part), 0o644))
		e.commitOn(a, "big", fmt.Sprintf("part %d", i))
	}
	before := used()
	cutPushWhen(t, e, a, b, "big", 0, used, part)
	ts := e.incomingOn(b)
	if len(ts) != 1 || !ts[0].New || ts[0].Commits < 1 {
		t.Fatalf("%s shows incoming transfers %+v; want big@master, new, with a commit", b.name, ts)
	}
	if l := left(ts[0].DotID); len(l) == 0 {
		t.Fatalf("found no storage of the staged dot %s on %s", ts[0].DotID, b.name)
	}
	held := used()
	e.on(b, "transfers", "abort", "big")
	// Space comes back asynchronously on both: wait a little.
	after := used()
	for end := time.Now().Add(20 * time.Second); after > held-part && time.Now().Before(end); after = used() {
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s: %d bytes used before the push, %d held by the cut-off transfer, %d after abort", b.name, before, held, after)
	if after > held-part {
		t.Fatalf("abort freed %d bytes on %s; want at least a commit's %d", held-after, b.name, part)
	}
	if l := left(ts[0].DotID); len(l) != 0 {
		t.Fatalf("after abort the staged dot's storage remains: %v", l)
	}
	if ts := e.incomingOn(b); len(ts) != 0 {
		t.Fatalf("after abort %s still shows %+v", b.name, ts)
	}
	if s := e.transfer(a, "push", b.name, "big"); s.Commits != 4 {
		t.Fatalf("push after abort: %+v; want all 4 commits", s)
	}
	if !sameTree(readTree(t, dir), readTree(t, e.pathOn(b, "big.data"))) {
		t.Fatalf("%s's tree differs from a's after the push", b.name)
	}
}

// humanBytes parses a size as zfs prints it: 512, 1.5K, 20.1M, 2G...
func humanBytes(t *testing.T, s string) int64 {
	t.Helper()
	mult := 1.0
	if i := strings.IndexAny(s, "KMGTP"); i >= 0 {
		mult = float64(int64(1) << (10 * (1 + strings.IndexByte("KMGTP", s[i]))))
		s = s[:i]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("size %q: %v", s, err)
	}
	return int64(f * mult)
}
