package neutral

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// memNode is one entry of an in-memory tree and a file's bytes.
type memNode struct {
	e    Entry
	data []byte
}

type memTree map[string]memNode

// randomTree is a tree of up to three levels over a few names chosen to
// sort differently by bytes and by walk order ("a/x" before "a-b").
func randomTree(r *rand.Rand) memTree {
	t := memTree{}
	var fill func(dir string, depth int)
	fill = func(dir string, depth int) {
		for _, name := range []string{"a", "a-b", "b", "c.d"} {
			if r.IntN(3) == 0 {
				continue
			}
			p := name
			if dir != "" {
				p = dir + "/" + name
			}
			switch k := r.IntN(4); {
			case k == 0 && depth < 3:
				t[p] = memNode{e: Entry{Kind: KindDir, Path: p, Mode: 0o755, MTime: time.Unix(int64(r.IntN(5)), 0)}}
				fill(p, depth+1)
			case k == 1:
				t[p] = memNode{e: Entry{Kind: KindSymlink, Path: p, Mode: 0o777, MTime: time.Unix(1, 0), Target: "t" + fmt.Sprint(r.IntN(3))}}
			default:
				t.putFile(p, r)
			}
		}
	}
	fill("", 0)
	return t
}

func (t memTree) putFile(p string, r *rand.Rand) {
	data := make([]byte, r.IntN(200))
	for i := range data {
		data[i] = byte(r.IntN(3))
	}
	t[p] = memNode{e: Entry{Kind: KindFile, Path: p, Mode: 0o644, MTime: time.Unix(int64(r.IntN(3)), int64(r.IntN(2))), Size: int64(len(data))}, data: data}
}

func (t memTree) clone() memTree {
	c := memTree{}
	for k, v := range t {
		c[k] = v
	}
	return c
}

// removeBelow removes p's subtree (not p).
func (t memTree) removeBelow(p string) {
	for k := range t {
		if isBelow(k, p) {
			delete(t, k)
		}
	}
}

// mutate makes a few random changes of every kind a delta carries.
func mutate(t memTree, r *rand.Rand) {
	paths := t.sorted()
	for range 1 + r.IntN(4) {
		if len(paths) == 0 {
			break
		}
		p := paths[r.IntN(len(paths))]
		n, ok := t[p]
		if !ok {
			continue
		}
		switch r.IntN(6) {
		case 0: // remove, with the subtree
			delete(t, p)
			t.removeBelow(p)
		case 1:
			n.e.MTime = n.e.MTime.Add(time.Nanosecond)
			t[p] = n
		case 2:
			n.e.Mode ^= 0o100
			t[p] = n
		case 3: // becomes a file
			t.removeBelow(p)
			t.putFile(p, r)
		case 4: // becomes a directory with a file
			t.removeBelow(p)
			t[p] = memNode{e: Entry{Kind: KindDir, Path: p, Mode: 0o700, MTime: time.Unix(0, 0)}}
			t.putFile(p+"/new", r)
		case 5:
			if n.e.Kind == KindFile && len(n.data) > 0 {
				n.data = bytes.Clone(n.data)
				n.data[r.IntN(len(n.data))]++
				t[p] = n
			} else if n.e.Kind == KindDir {
				t.putFile(p+"/added", r)
			}
		}
	}
}

func (t memTree) sorted() []string {
	var ps []string
	for p := range t {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, comparePaths)
	return ps
}

func (t memTree) whole(tb testing.TB) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range t.sorted() {
		n := t[p]
		if err := w.Add(n.e, bytes.NewReader(n.data)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// memDelta is the delta from a to b, computed the plain way.
func memDelta(tb testing.TB, a, b memTree, base string) []byte {
	var es []Entry
	for p, n := range a {
		if _, ok := b[p]; !ok {
			es = append(es, Entry{Kind: KindRemoved, Path: p})
		} else if n.e.Kind == KindDir && b[p].e.Kind != KindDir {
			es = append(es, b[p].e)
		}
	}
	for p, n := range b {
		o, ok := a[p]
		if !ok || o.e != n.e || !bytes.Equal(o.data, n.data) {
			es = append(es, n.e)
		}
	}
	es = slices.Compact(SortDelta(es))
	var buf bytes.Buffer
	w, err := NewDeltaWriter(&buf, base)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range es {
		if err := w.Add(e, bytes.NewReader(b[e.Path].data)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// applyMem applies a delta stream to t as a receiver must, refusing what
// a receiver refuses.
func applyMem(t memTree, base string, delta []byte) error {
	return ScanDelta(bytes.NewReader(delta), func(id string) error {
		if id != base {
			return fmt.Errorf("unknown base %q", id)
		}
		return nil
	}, func(e Entry, c io.Reader) error {
		old, had := t[e.Path]
		if e.Kind == KindRemoved {
			if !had {
				return fmt.Errorf("removal of %q, which the base lacks", e.Path)
			}
			delete(t, e.Path)
			t.removeBelow(e.Path)
			return nil
		}
		if parent := parentOf(e.Path); parent != "" && t[parent].e.Kind != KindDir {
			return fmt.Errorf("%q has no directory", e.Path)
		}
		if had && (old.e.Kind == KindDir) != (e.Kind == KindDir) {
			t.removeBelow(e.Path)
		}
		data, err := io.ReadAll(c)
		t[e.Path] = memNode{e: e, data: data}
		return err
	})
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// TestDeltaProperty: for random trees and random changes, the base plus
// the delta is the new tree, whole stream for whole stream.
func TestDeltaProperty(t *testing.T) {
	for seed := range uint64(500) {
		r := rand.New(rand.NewPCG(seed, 1))
		a := randomTree(r)
		b := a.clone()
		mutate(b, r)
		d := memDelta(t, a, b, "c1")
		got := a.clone()
		if err := applyMem(got, "c1", d); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !bytes.Equal(got.whole(t), b.whole(t)) {
			t.Fatalf("seed %d: base + delta differs from the new tree:\n got %v\nwant %v", seed, got.sorted(), b.sorted())
		}
		if len(a) > 0 && len(d) >= len(b.whole(t))+64 {
			t.Fatalf("seed %d: delta of %d bytes, whole %d", seed, len(d), len(b.whole(t)))
		}
	}
}

func TestWholeAndDeltaAreNeverMistaken(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	a := randomTree(r)
	a.putFile("f", r)
	b := a.clone()
	b.putFile("f", r)
	d := memDelta(t, a, b, "base-1")
	if err := Scan(bytes.NewReader(d), func(Entry, io.Reader) error { return nil }); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "delta") {
		t.Fatalf("Scan of a delta: %v", err)
	}
	if err := Read(bytes.NewReader(d), t.TempDir()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read of a delta: %v", err)
	}
	if err := ScanDelta(bytes.NewReader(a.whole(t)), nil, func(Entry, io.Reader) error { return nil }); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "whole") {
		t.Fatalf("ScanDelta of a whole stream: %v", err)
	}
	var seen string
	if err := ScanDelta(bytes.NewReader(d), func(id string) error { seen = id; return nil }, func(Entry, io.Reader) error { return nil }); err != nil || seen != "base-1" {
		t.Fatalf("ScanDelta: base %q, %v", seen, err)
	}
	unknown := errors.New("unknown base")
	if err := ScanDelta(bytes.NewReader(d), func(string) error { return unknown }, func(Entry, io.Reader) error {
		t.Fatal("a record after the base was refused")
		return nil
	}); err != unknown {
		t.Fatalf("refused base: %v", err)
	}
	for _, at := range []int{5, len(d) / 2, len(d) - 2} {
		bad := bytes.Clone(d)
		bad[at] ^= 1
		if err := applyMem(a.clone(), "base-1", bad); err == nil {
			t.Fatalf("flipped byte %d accepted", at)
		}
	}
}

func TestDeltaWriterRefusesBadRecords(t *testing.T) {
	if _, err := NewDeltaWriter(io.Discard, ""); err == nil {
		t.Fatal("empty base accepted")
	}
	if _, err := NewDeltaWriter(io.Discard, "a b"); err == nil {
		t.Fatal("base with a space accepted")
	}
	w, _ := NewWriter(io.Discard)
	if err := w.Add(Entry{Kind: KindRemoved, Path: "x"}, nil); err == nil || !strings.Contains(err.Error(), "delta") {
		t.Fatalf("removal in a whole stream: %v", err)
	}
	dw, _ := NewDeltaWriter(io.Discard, "b")
	for _, c := range []struct {
		e    Entry
		want string
	}{
		{Entry{Kind: KindRemoved, Path: "d"}, ""},
		{Entry{Kind: KindFile, Path: "d/x"}, "below"},
		{Entry{Kind: KindFile, Path: "c"}, "walk order"},
		{Entry{Kind: KindFile, Path: "e"}, ""},
		{Entry{Kind: KindDir, Path: "e/f"}, "below"},
		{Entry{Kind: KindRemoved, Path: "f", Mode: 0o600}, "only its path"},
		{Entry{Kind: KindFile, Path: "g/h/i"}, ""}, // parents unchanged: absent
	} {
		if c.e.Kind != KindRemoved {
			c.e.MTime = time.Unix(0, 0)
		}
		err := dw.Add(c.e, nil)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%+v: %v, want %q", c.e, err, c.want)
		}
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSortDelta(t *testing.T) {
	got := SortDelta([]Entry{
		{Kind: KindFile, Path: "a-b"}, {Kind: KindRemoved, Path: "a/x/y"}, {Kind: KindRemoved, Path: "a/x"},
		{Kind: KindDir, Path: "a"}, {Kind: KindFile, Path: "b"}, {Kind: KindRemoved, Path: "b/c"},
	})
	var ps []string
	for _, e := range got {
		ps = append(ps, string(e.Kind)+e.Path)
	}
	if s := strings.Join(ps, " "); s != "da ra/x fa-b fb" {
		t.Fatalf("got %s", s)
	}
}

// FuzzScanDelta: ScanDelta passes only valid records in delta order, or
// fails with ErrCorrupt; what it passes writes back to an equal delta.
func FuzzScanDelta(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	a := randomTree(r)
	b := a.clone()
	mutate(b, r)
	f.Add(memDelta(f, a, b, "c1"))
	f.Add([]byte(deltaMagic + "\x01xr\x01ae"))
	f.Add(a.whole(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ord deltaOrder
		var base string
		var again bytes.Buffer
		var w *Writer
		err := ScanDelta(bytes.NewReader(data), func(id string) error {
			base = id
			var err error
			w, err = NewDeltaWriter(&again, id)
			return err
		}, func(e Entry, c io.Reader) error {
			if err := e.check(true); err != nil {
				t.Fatalf("ScanDelta passed a bad entry: %v", err)
			}
			if err := ord.add(&e); err != nil {
				t.Fatalf("ScanDelta passed an entry out of order: %v", err)
			}
			return w.Add(e, c)
		})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("a bad stream gave %v, not ErrCorrupt", err)
			}
			return
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), data) {
			t.Fatalf("delta against %q did not write back byte for byte", base)
		}
	})
}

// dirEntries lists dir as Write streams it, symlink times left out (Read
// cannot set them: they are the time of unpacking).
func dirEntries(t testing.TB, dir string) string {
	var buf bytes.Buffer
	if err := Write(dir, &buf); err != nil {
		t.Fatal(err)
	}
	got, err := scanAll(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range got {
		if s.Kind == KindSymlink {
			s.MTime = time.Time{}
		}
		lines = append(lines, s.String())
	}
	return strings.Join(lines, "\n")
}

// TestApplyDeltaProperty: on disk, the base's tree plus the delta is the
// new tree, times of untouched directories included.
func TestApplyDeltaProperty(t *testing.T) {
	for seed := range uint64(150) {
		r := rand.New(rand.NewPCG(seed, 3))
		a := randomTree(r)
		b := a.clone()
		mutate(b, r)
		dir, want := t.TempDir(), t.TempDir()
		if err := Read(bytes.NewReader(a.whole(t)), dir); err != nil {
			t.Fatal(err)
		}
		if err := Read(bytes.NewReader(b.whole(t)), want); err != nil {
			t.Fatal(err)
		}
		if err := ApplyDelta(bytes.NewReader(memDelta(t, a, b, "c1")), dir, func(string) error { return nil }); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if g, w := dirEntries(t, dir), dirEntries(t, want); g != w {
			t.Fatalf("seed %d: applied:\n%s\nwant:\n%s", seed, g, w)
		}
	}
}

func TestApplyDeltaRefusesBadDeltas(t *testing.T) {
	dir := t.TempDir()
	base := memTree{}
	base["d"] = memNode{e: Entry{Kind: KindDir, Path: "d", Mode: 0o755, MTime: time.Unix(1, 0)}}
	base["d/sub"] = memNode{e: Entry{Kind: KindDir, Path: "d/sub", Mode: 0o755, MTime: time.Unix(1, 0)}}
	base["f"] = memNode{e: Entry{Kind: KindFile, Path: "f", Mode: 0o644, MTime: time.Unix(1, 0)}}
	base["l"] = memNode{e: Entry{Kind: KindSymlink, Path: "l", Mode: 0o777, MTime: time.Unix(1, 0), Target: "d"}}
	if err := Read(bytes.NewReader(base.whole(t)), dir); err != nil {
		t.Fatal(err)
	}
	delta := func(es ...Entry) []byte {
		var buf bytes.Buffer
		w, _ := NewDeltaWriter(&buf, "c1")
		for _, e := range es {
			if err := w.Add(e, nil); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		return buf.Bytes()
	}
	for name, d := range map[string][]byte{
		"removal of a missing path": delta(Entry{Kind: KindRemoved, Path: "gone"}),
		"record under a file":       delta(Entry{Kind: KindDir, Path: "f/x", Mode: 0o755, MTime: time.Unix(0, 0)}),
		"record without its dir":    delta(Entry{Kind: KindFile, Path: "e/x", Mode: 0o644, MTime: time.Unix(0, 0)}),
		"record below a symlink":    delta(Entry{Kind: KindFile, Path: "l/sub/x", Mode: 0o644, MTime: time.Unix(0, 0)}),
	} {
		if err := ApplyDelta(bytes.NewReader(d), dir, func(string) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	unknown := errors.New("unknown base")
	if err := ApplyDelta(bytes.NewReader(delta(Entry{Kind: KindRemoved, Path: "f"})), dir, func(string) error { return unknown }); err != unknown {
		t.Fatalf("unknown base: %v", err)
	}
	if got := dirEntries(t, dir); !strings.Contains(got, "f f ") {
		t.Fatalf("a refused delta changed the tree: %s", got)
	}
}

// FuzzApplyDelta: any delta applied to a base tree either fails with
// ErrCorrupt or leaves a tree that streams whole; nothing is written
// outside the directory, whatever the base's symlinks point at.
func FuzzApplyDelta(f *testing.F) {
	r := rand.New(rand.NewPCG(4, 4))
	a := randomTree(r)
	a["l"] = memNode{e: Entry{Kind: KindSymlink, Path: "l", Mode: 0o777, MTime: time.Unix(1, 0), Target: ".."}}
	b := a.clone()
	mutate(b, r)
	baseStream := a.whole(f)
	f.Add(memDelta(f, a, b, "c1"))
	f.Add([]byte(deltaMagic + "\x02c1r\x01le"))
	f.Add(baseStream)
	f.Fuzz(func(t *testing.T, data []byte) {
		outer := t.TempDir()
		dir := filepath.Join(outer, "in")
		os.Mkdir(dir, 0o755)
		if err := Read(bytes.NewReader(baseStream), dir); err != nil {
			t.Fatal(err)
		}
		err := ApplyDelta(bytes.NewReader(data), dir, func(string) error { return nil })
		if ents, _ := os.ReadDir(outer); len(ents) != 1 {
			t.Fatalf("the delta wrote outside its directory: %v", ents)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("a bad delta gave %v, not ErrCorrupt", err)
			}
			return
		}
		if err := Write(dir, io.Discard); err != nil {
			t.Fatalf("the tree a delta left does not stream: %v", err)
		}
	})
}
