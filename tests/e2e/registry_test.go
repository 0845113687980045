package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// A lost or damaged registry: the node refuses to start with one line that
// names the file and `dm registry rebuild`, changes nothing, and the
// rebuild brings back every dot, branch and commit from the backends.

// registryState is what a rebuild must restore: `dm list --json`, and
// `dm branch --json` and `dm log --json` of every branch, and the files.
type registryState struct {
	List     json.RawMessage
	Branches map[string]json.RawMessage // by dot
	Logs     map[string]json.RawMessage // by dot@branch
	Trees    map[string]map[string]string
}

func (e *env) registryState() registryState {
	e.t.Helper()
	st := registryState{Branches: map[string]json.RawMessage{}, Logs: map[string]json.RawMessage{}, Trees: map[string]map[string]string{}}
	st.List = json.RawMessage(e.ok("list", "--json"))
	for _, it := range e.list() {
		st.Branches[it.Name] = json.RawMessage(e.ok("branch", "--dot", it.Name, "--json"))
		var bs []struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(st.Branches[it.Name], &bs); err != nil || len(bs) == 0 {
			e.t.Fatalf("dm branch --dot %s --json: %v in %s", it.Name, err, st.Branches[it.Name])
		}
		for _, b := range bs {
			v := it.Name + "@" + b.Name
			st.Logs[v] = json.RawMessage(e.ok("log", "--dot", it.Name, "--branch", b.Name, "--json"))
			st.Trees[v] = readTree(e.t, e.path(v))
		}
	}
	return st
}

func (a registryState) sameAs(t *testing.T, b registryState) {
	t.Helper()
	if !bytes.Equal(a.List, b.List) {
		t.Errorf("dm list --json differs:\nbefore %s\nafter  %s", a.List, b.List)
	}
	if !reflect.DeepEqual(a.Branches, b.Branches) {
		t.Errorf("dm branch --json differs:\nbefore %s\nafter  %s", a.Branches, b.Branches)
	}
	for v, l := range a.Logs {
		if !bytes.Equal(l, b.Logs[v]) {
			t.Errorf("dm log --json of %s differs:\nbefore %s\nafter  %s", v, l, b.Logs[v])
		}
	}
	if len(a.Logs) != len(b.Logs) {
		t.Errorf("%d branches before, %d after", len(a.Logs), len(b.Logs))
	}
	if !reflect.DeepEqual(a.Trees, b.Trees) {
		t.Errorf("the working trees differ:\nbefore %v\nafter  %v", a.Trees, b.Trees)
	}
}

// registryWorkflow leaves dots with branches, several commits with
// metadata, a reset and a deleted branch on backend (the files backend
// when empty).
func registryWorkflow(e *env, backend string) {
	t := e.t
	if backend == "" {
		backend = "files"
	}
	e.ok("init", "app", "--backend", backend)
	writeFile(t, filepath.Join(e.path("app"), "a.txt"), "one")
	e.ok("commit", "-m", "one", "-d", "ci=1", "-d", "build=7")
	writeFile(t, filepath.Join(e.path("app.db"), "rows"), "1,2,3")
	e.ok("commit", "-m", "two\nwith a second line")
	writeFile(t, filepath.Join(e.path("app"), "a.txt"), "three")
	e.ok("commit", "-m", "three")
	e.ok("reset", "--hard", "HEAD^")
	e.ok("checkout", "-b", "feature")
	writeFile(t, filepath.Join(e.path("app"), "f.txt"), "feature")
	e.ok("commit", "-m", "feature work", "-d", "who=me")
	e.ok("branch", "hotfix", "HEAD^")
	e.ok("branch", "gone")
	e.ok("branch", "-d", "gone")
	e.ok("checkout", "master")
	e.ok("init", "notes", "--backend", backend)
	writeFile(t, filepath.Join(e.path("notes"), "todo"), "x")
	e.ok("commit", "--dot", "notes", "-m", "n1")
	e.ok("switch", "app")
}

// startArgs restarts the env's node; backend flags are remembered.
func (e *env) startArgs() []string {
	return []string{"cluster", "init", "--data-dir", e.data, "--port", strconv.Itoa(e.port)}
}

// refusedUnchanged checks that a start is refused with the one line and
// leaves the registry file as it was.
func (e *env) refusedUnchanged(reg string) {
	e.t.Helper()
	before, err := os.ReadFile(reg)
	existed := err == nil
	r := e.fails("dm registry rebuild --data-dir "+e.data, e.startArgs()...)
	if !bytes.Contains([]byte(r.err), []byte(reg)) {
		e.t.Fatalf("the refusal does not name the registry %s: %q", reg, r.err)
	}
	after, err := os.ReadFile(reg)
	if existed && (err != nil || sha256.Sum256(before) != sha256.Sum256(after)) {
		e.t.Fatalf("the refused start changed the registry (%v)", err)
	}
	if !existed && err == nil {
		e.t.Fatalf("the refused start left a new registry %s behind", reg)
	}
	e.t.Logf("refused: %s", r.err)
}

func (e *env) rebuildAndCompare(want registryState) {
	e.t.Helper()
	e.ok("registry", "rebuild", "--data-dir", e.data)
	e.ok(e.startArgs()...)
	want.sameAs(e.t, e.registryState())
}

func registryRebuildTest(t *testing.T, e *env, backend, wantBackend string) {
	registryWorkflow(e, backend)
	for _, it := range e.list() {
		if it.Dot.Backend != wantBackend {
			t.Fatalf("dot %s is on backend %s, want %s", it.Name, it.Dot.Backend, wantBackend)
		}
	}
	want := e.registryState()
	reg := filepath.Join(e.data, "registry.db")

	e.stopNode()
	if err := os.Remove(reg); err != nil {
		t.Fatal(err)
	}
	e.refusedUnchanged(reg)
	e.rebuildAndCompare(want)

	// The node works on after a rebuild, and the rebuilt registry keeps
	// its copies up to date.
	writeFile(t, filepath.Join(e.path("app"), "after.txt"), "after")
	e.ok("commit", "-m", "after the rebuild")
	want = e.registryState()
	e.stopNode()
	if err := os.Remove(reg); err != nil {
		t.Fatal(err)
	}
	e.ok("registry", "rebuild", "--data-dir", e.data)
	e.ok(e.startArgs()...)
	want.sameAs(t, e.registryState())
}

func TestRegistryRebuildFiles(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	registryRebuildTest(t, e, "files", "dump")
}

func TestRegistryRebuildZFS(t *testing.T) {
	registryRebuildTest(t, zfsEnv(t), "zfs", "zfs")
}

func TestRegistryRebuildBtrfs(t *testing.T) {
	registryRebuildTest(t, btrfsEnv(t, "--backend", "btrfs"), "btrfs", "btrfs")
}

// reachableLeafPage finds a leaf page that the registry's newest
// bbolt meta page reaches (4 KiB pages): a leaf of the first bucket kept
// in pages of its own, or else the root bucket's leaf. A leaf found by
// its header alone may be a freed page, whose damage changes nothing
// (bbolt rebuilds its free list from the reachable pages at open).
func reachableLeafPage(t *testing.T, data []byte) int {
	t.Helper()
	const pageSize, leafFlag, bucketFlag = 4096, 0x02, 0x01
	u64 := func(off int) uint64 { return binary.NativeEndian.Uint64(data[off:]) }
	u32 := func(off int) uint32 { return binary.NativeEndian.Uint32(data[off:]) }
	flags := func(pg uint64) uint16 { return binary.NativeEndian.Uint16(data[pg*pageSize+8:]) }
	// The meta (after the 16-byte page header): magic at 0, the root
	// bucket's page at 16, the transaction id at 48.
	meta := -1
	for m := range 2 {
		if u32(m*pageSize+16) == 0xED0CDAED && (meta < 0 || u64(m*pageSize+16+48) > u64(meta*pageSize+16+48)) {
			meta = m
		}
	}
	if meta < 0 {
		t.Fatal("the registry has no bbolt meta page")
	}
	// firstLeaf descends through branch pages (elements of 16 bytes, the
	// child's page id at 8) to the leftmost leaf.
	firstLeaf := func(pg uint64) uint64 {
		for range 16 {
			if (pg+1)*pageSize > uint64(len(data)) {
				break
			}
			if flags(pg)&leafFlag != 0 {
				return pg
			}
			pg = u64(int(pg*pageSize) + 16 + 8)
		}
		t.Fatalf("no leaf below page %d of the registry", pg)
		return 0
	}
	root := firstLeaf(u64(meta*pageSize + 16 + 16))
	count := int(binary.NativeEndian.Uint16(data[root*pageSize+10:]))
	for i := range count {
		// A leaf element: flags, offset from itself, key size, value size.
		el := int(root*pageSize) + 16 + i*16
		if u32(el)&bucketFlag == 0 {
			continue
		}
		if sub := u64(el + int(u32(el+4)) + int(u32(el+8))); sub != 0 {
			return int(firstLeaf(sub))
		}
	}
	return int(root)
}

// TestDamagedRegistryRefused damages the registry as the issue found it:
// cut to 16 KiB, one page overwritten, cut to nothing. Each start is
// refused without a crash and without change; a rebuild then restores
// everything.
func TestDamagedRegistryRefused(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	registryWorkflow(e, "")
	// Enough registry pages for a 16 KiB cut to lose some.
	for i := range 20 {
		e.ok("branch", "--dot", "notes", "b"+strconv.Itoa(i))
	}
	want := e.registryState()
	reg := filepath.Join(e.data, "registry.db")
	e.stopNode()
	healthy, err := os.ReadFile(reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(healthy) <= 16<<10 {
		t.Fatalf("the registry has only %d bytes", len(healthy))
	}
	overwritten := bytes.Clone(healthy)
	pg := reachableLeafPage(t, healthy)
	t.Logf("overwriting page %d of %d", pg, len(healthy)/4096)
	for i := pg * 4096; i < (pg+1)*4096; i++ {
		overwritten[i] = byte(i*7 + 3)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"truncated to 16 KiB", healthy[:16<<10]},
		{"one page overwritten", overwritten},
		{"truncated to 0 bytes", nil},
	} {
		t.Logf("registry %s", c.name)
		if err := os.WriteFile(reg, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		e.refusedUnchanged(reg)
	}
	e.rebuildAndCompare(want)
	var kept []string
	if ents, err := os.ReadDir(e.data); err == nil {
		for _, de := range ents {
			if m, _ := filepath.Match("registry.db.damaged-*", de.Name()); m {
				kept = append(kept, de.Name())
			}
		}
	}
	if len(kept) != 1 {
		t.Fatalf("the damaged registry is not kept aside once: %v", kept)
	}
}
