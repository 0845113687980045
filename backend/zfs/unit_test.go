package zfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/framing/framingtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// These tests need no ZFS.

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		want   error
		is     error
	}{
		{"connect: No such file or directory\nPlease make sure that the zfs-fuse daemon is running.\ninternal error: failed to initialize ZFS library\n", ErrNoDaemon, dotmesh.ErrUnavailable},
		{"The ZFS modules are not loaded.\nTry running '/sbin/modprobe zfs' as root to load them.\n", ErrNoDaemon, dotmesh.ErrUnavailable},
		{"cannot open 'p/x': dataset does not exist\n", ErrNoDataset, dotmesh.ErrNotFound},
		{"cannot create 'p/x': dataset already exists\n", ErrExists, dotmesh.ErrAlreadyExists},
		{"cannot destroy 'p/x': dataset is busy\n", ErrBusy, dotmesh.ErrInUse},
		{"cannot rename 'p/x': dataset is busy\n", ErrBusy, dotmesh.ErrInUse},
		{"cannot receive new filesystem stream: invalid backup stream\n", ErrBadStream, dotmesh.ErrCorrupt},
		{"cannot receive new filesystem stream: invalid stream (checksum mismatch)\n", ErrBadStream, dotmesh.ErrCorrupt},
		{"cannot receive incremental stream: destination p/x has been modified\nsince most recent snapshot\n", ErrModified, dotmesh.ErrDirty},
		{"cannot destroy 'p/x@s': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\n", ErrDependents, dotmesh.ErrConflict},
		{"cannot unmount 'p/x': not currently mounted\n", ErrNotMounted, ErrNotMounted},
		{"cannot open 'nopool': no such pool\n", ErrNoPool, dotmesh.ErrNotFound},
		{"something new\n", nil, nil},
	} {
		got := classify(tc.stderr)
		if got != tc.want {
			t.Errorf("classify(%q) = %v, want %v", tc.stderr, got, tc.want)
		}
		err := &CmdError{Args: []string{"zfs"}, Stderr: tc.stderr, Err: errors.New("exit status 1"), Kind: got}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%v does not wrap %v", err, tc.is)
		}
	}
}

func TestParseLeaf(t *testing.T) {
	for leaf, want := range map[string]struct {
		branch string
		gen    int
		ok     bool
	}{
		"master.1":                    {"master", 1, true},
		"feat-x_2.17":                 {"feat-x_2", 17, true},
		"master.recv-0123abcd":        {"master", 0, true},
		"master":                      {},
		"master.0":                    {},
		"master.01":                   {},
		"master.-1":                   {},
		"master.1x":                   {},
		"master.recv-xyz":             {},
		"master.recv-0123ABCD":        {},
		"ma ster.1":                   {},
		".1":                          {},
		"master.99999999999999999999": {},
	} {
		b, g, ok := parseLeaf(leaf)
		if b != want.branch || g != want.gen || ok != want.ok {
			t.Errorf("parseLeaf(%q) = %q, %d, %v; want %+v", leaf, b, g, ok, want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, s := range []string{"pool", "pool/dmfs", "p/a-b_c.d:e/f"} {
		if _, err := parseDataset(s); err != nil {
			t.Errorf("parseDataset(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "-R", "pool/-R", "pool//x", "pool/x@y", "pool/x%y", "1pool", "mirror", "raidz2", "c0t0", "pool/..", "pool/a b", strings.Repeat("a", 256)} {
		if _, err := parseDataset(s); !errors.Is(err, dotmesh.ErrInvalidName) {
			t.Errorf("parseDataset(%q) = %v, want ErrInvalidName", s, err)
		}
	}
	if _, err := parseSnapshot("pool/x@-d"); err == nil {
		t.Error("a snapshot name starting with - was accepted")
	}
	if _, err := newProp("sharenfs", "on"); err == nil {
		t.Error("an unexpected property was accepted")
	}
	if _, err := newProp("mountpoint", "/a\n-o"); err == nil {
		t.Error("a property value with a newline was accepted")
	}
}

// TestStreamFormat pins the zfs stream format; the framing itself is
// tested in package framing.
func TestStreamFormat(t *testing.T) {
	framingtest.CheckFormat(t, streamFormat, framingtest.Golden{
		FullSmall:        "444d5a465300000146303132333435363738396162636465663031323334353637383961626364656600000000000000000000000000000000000000000000000000000000000000000000000368656c000000026c6f000000000000000000000005ca43edb0cd4fe32d333a5e414ddc61d6abbe004f163e6b545d1e0ba11f4a169c",
		IncrementalSmall: "444d5a465300000149303132333435363738396162636465663031323334353637383961626364656666656463626139383736353433323130666564636261393837363534333231300000000368656c000000026c6f00000000000000000000000583aad4ae1eeb021c711def12342fb761d93039fcf7e535b985fde48a9e968500",
		FullBig:          "af4c2ba9dbaf83a81aae85c2ccdb5a7624bba4c394a580bd26119979032bbcdc",
		IncrementalBig:   "318f8ac35cf21631bfb52a80324dc0798342ad0860432aa05a277e2c1888d15e",
	})
}

func TestHoldback(t *testing.T) {
	var out bytes.Buffer
	h := &holdback{w: &out, keep: 10}
	for _, s := range []string{"abc", "defghijklmnop", "q", "rstuvwxyz"} {
		h.Write([]byte(s))
		if out.Len() > 26-10 {
			t.Fatalf("%d bytes passed before Flush", out.Len())
		}
	}
	if out.String() != "abcdefghijklmnop" {
		t.Errorf("before Flush: %q", out.String())
	}
	h.Flush()
	if out.String() != "abcdefghijklmnopqrstuvwxyz" {
		t.Errorf("after Flush: %q", out.String())
	}
}

// record builds a send stream record header.
func record(typ uint32, f func(h []byte)) []byte {
	h := make([]byte, drrHeaderLen)
	binary.LittleEndian.PutUint32(h, typ)
	if f != nil {
		f(h)
	}
	return h
}

func beginRec(from uint64, flags uint32) []byte {
	return record(drrBegin, func(h []byte) {
		binary.LittleEndian.PutUint64(h[8:], drrMagic)
		binary.LittleEndian.PutUint32(h[36:], flags)
		binary.LittleEndian.PutUint64(h[40:], 42)
		binary.LittleEndian.PutUint64(h[48:], from)
	})
}

func TestSendStreamRecords(t *testing.T) {
	b, err := parseBegin(beginRec(7, drrFlagClone))
	if err != nil || b.full() || !b.clone() || b.fromGUID != 7 {
		t.Errorf("parseBegin = %+v, %v", b, err)
	}
	if b, err := parseBegin(beginRec(0, 0)); err != nil || !b.full() {
		t.Errorf("parseBegin of a full stream = %+v, %v", b, err)
	}
	if _, err := parseBegin(record(drrBegin, nil)); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Errorf("no magic: %v", err)
	}
	cat := func(rs ...[]byte) io.Reader { return bytes.NewReader(bytes.Join(rs, nil)) }
	end := record(drrEnd, nil)
	if dirty, _, err := inspectIncremental(cat(beginRec(7, 0), end)); dirty || err != nil {
		t.Errorf("BEGIN END: dirty %v, %v", dirty, err)
	}
	if dirty, _, err := inspectIncremental(cat(beginRec(7, 0), record(drrFreeObjects, nil), record(drrFree, nil), end)); dirty || err != nil {
		t.Errorf("only frees: dirty %v, %v", dirty, err)
	}
	dirty, n, err := inspectIncremental(cat(beginRec(7, 0), record(1, nil), make([]byte, 1000), end))
	if !dirty || n != 1000+drrHeaderLen || err != nil {
		t.Errorf("an OBJECT record: dirty %v, %d bytes, %v", dirty, n, err)
	}
	if _, _, err := inspectIncremental(cat(beginRec(7, 0))); err == nil {
		t.Error("a stream without END was accepted")
	}
}

func TestParseInventory(t *testing.T) {
	c1, c2 := dotmesh.NewCommitID(), dotmesh.NewCommitID()
	dot := dotmesh.NewDotID()
	con := "p/dmfs/" + string(dot)
	out := strings.Join([]string{
		con + "\ttype\tfilesystem",
		con + "/master.1\ttype\tfilesystem",
		con + "/master.1\torigin\t-",
		con + "/master.1\tio.dotmesh:state\told",
		con + "/master.1@" + string(c1) + "\ttype\tsnapshot",
		con + "/master.1@" + string(c1) + "\tio.dotmesh:branch\tmaster",
		con + "/master.1@" + string(c2) + "\ttype\tsnapshot",
		con + "/master.1@" + string(c2) + "\tdefer_destroy\ton",
		con + "/master.2\ttype\tfilesystem",
		con + "/master.2\torigin\t" + con + "/master.1@" + string(c1),
		con + "/master.2\tio.dotmesh:state\tlive",
		con + "/master.2\tmountpoint\t/mnt/x/master",
		con + "/master.2\tmounted\tyes",
		con + "/master.2\trefquota\t16777216",
		con + "/master.1\trefquota\t0",
		con + "/stranger\ttype\tfilesystem",
		con + "/master.2/nested\ttype\tfilesystem",
		"",
	}, "\n")
	rows, err := parsePropRows([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := parseInventory(dot, dataset{con}, rows)
	if err != nil {
		t.Fatal(err)
	}
	live := inv.live("master")
	if !inv.exists || len(inv.fss) != 2 || live == nil || live.gen != 2 || !live.mounted || live.origin == nil || live.origin.name != string(c1) {
		t.Fatalf("inventory: %+v, live %+v", inv, live)
	}
	if live.refquota != 16<<20 || inv.fss[0].refquota != 0 {
		t.Errorf("refquotas %d, %d; want the live one's 16 MiB (a size bound) and none", live.refquota, inv.fss[0].refquota)
	}
	if inv.commit(c1) == nil || inv.commit(c2) != nil || inv.snaps[string(c2)] == nil {
		t.Errorf("commits: c1 %v, c2 %v (deferred)", inv.commit(c1), inv.commit(c2))
	}
	if s := inv.commit(c1); s.branch() != "master" || len(s.clones) != 1 {
		t.Errorf("c1: branch %q, %d clones", s.branch(), len(s.clones))
	}
	if inv.nextGen("master") != 3 || inv.nextGen("other") != 1 {
		t.Errorf("nextGen = %d, %d", inv.nextGen("master"), inv.nextGen("other"))
	}
}

func FuzzSendStream(f *testing.F) {
	f.Add(append(beginRec(7, 0), record(drrEnd, nil)...))
	f.Add(append(beginRec(0, 0), record(1, nil)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = parseBegin(in)
		_, _, _ = inspectIncremental(bytes.NewReader(in))
	})
}

func FuzzParseInventory(f *testing.F) {
	dot := dotmesh.NewDotID()
	f.Add("p/d/" + string(dot) + "/master.1\ttype\tfilesystem\np/d/" + string(dot) + "/master.1@x\ttype\tsnapshot\n")
	f.Fuzz(func(t *testing.T, out string) {
		rows, err := parsePropRows([]byte(out))
		if err != nil {
			return
		}
		inv, err := parseInventory(dot, dataset{"p/d/" + string(dot)}, rows)
		if err != nil {
			return
		}
		for _, fs := range inv.fss {
			if _, err := parseDataset(fs.ds.name); err != nil {
				t.Fatalf("inventory holds an invalid dataset name %q", fs.ds.name)
			}
			for _, s := range fs.snaps {
				if _, err := parseSnapshot(s.snap().String()); err != nil {
					t.Fatalf("inventory holds an invalid snapshot name %q", s.snap())
				}
			}
		}
	})
}

func FuzzDecodePending(f *testing.F) {
	dot := dotmesh.NewDotID()
	f.Add([]byte("p/d/" + string(dot) + "/master.1@c1\np/d/" + string(dot) + "/master.2\n"))
	f.Add([]byte("p/d/x/master.1@c1\np/other/master.2\n"))
	b := &Backend{root: dataset{"p/d"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := b.decodePending(data)
		if err != nil {
			return
		}
		// A record names a snapshot and a filesystem of one dot below the root.
		if !strings.HasPrefix(p.next.name, "p/d/") || !strings.HasPrefix(p.snap.String(), "p/d/") || dotOf(b, p.snap.fs) != dotOf(b, p.next) {
			t.Fatalf("accepted %q as %s, %s", data, p.snap, p.next)
		}
	})
}

func TestDaemonHint(t *testing.T) {
	err := &CmdError{Args: []string{"zpool", "list"}, Err: errors.New("exit status 1"), Kind: ErrNoDaemon,
		Stderr: "connect: No such file or directory\nPlease make sure that the zfs-fuse daemon is running.\n"}
	got := daemonHint(err)
	if !errors.Is(got, dotmesh.ErrUnavailable) || !strings.Contains(got.Error(), "zfs-fuse is not running: start it with `zfs-fuse` or install zfs-fuse") {
		t.Errorf("daemonHint = %v", got)
	}
}

// storeStats counts commit snapshots, not the backend's own dm-…
// snapshots nor datasets, and takes StoredBytes from the root alone.
func TestStoreStatsRows(t *testing.T) {
	root := dataset{"pool/dm"}
	rows := []propRow{
		{"pool/dm", "used", "5000"},
		{"pool/dm", "referenced", "24"},
		{"pool/dm/d1", "used", "4000"},
		{"pool/dm/d1/master.1", "referenced", "3000"},
		{"pool/dm/d1/master.1@c1", "used", "10"},
		{"pool/dm/d1/master.1@c1", "referenced", "2000"},
		{"pool/dm/d1/master.1@c2", "referenced", "2500"},
		{"pool/dm/d1/master.1@dm-usage-0a1b2c3d", "referenced", "9999"},
	}
	st, err := storeStats(root, rows)
	if err != nil || st != (dotmesh.StoreStats{Objects: 2, StoredBytes: 5000, LogicalBytes: 4500}) {
		t.Fatalf("storeStats = %+v, %v", st, err)
	}
	if _, err := storeStats(root, append(rows, propRow{"pool/dm/d1/master.1@c3", "referenced", "-"})); err == nil {
		t.Fatal("a referenced of - was taken as a number")
	}
}
