package neutral

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// scanned is an entry as Scan gave it, with its content's length and hash.
type scanned struct {
	Entry
	got int64
	sum [sha256.Size]byte
}

func (s scanned) String() string {
	return fmt.Sprintf("%c %s %o %d size=%d target=%q content=%d/%x",
		s.Kind, s.Path, s.Mode, s.MTime.UnixNano(), s.Size, s.Target, s.got, s.sum[:4])
}

// scanAll scans a stream, reading every content whole.
func scanAll(r io.Reader) ([]scanned, error) {
	var out []scanned
	err := Scan(r, func(e Entry, content io.Reader) error {
		h := sha256.New()
		n, err := io.Copy(h, content)
		if err != nil {
			return err
		}
		s := scanned{Entry: e, got: n}
		h.Sum(s.sum[:0])
		out = append(out, s)
		return nil
	})
	return out, err
}

// randReader yields n deterministic pseudo-random bytes.
func randReader(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), n)
}

func sumOf(r io.Reader) (sum [sha256.Size]byte) {
	h := sha256.New()
	io.Copy(h, r)
	h.Sum(sum[:0])
	return sum
}

// testEntries is a tree of every kind, with empty and large files,
// odd modes and times to the nanosecond, some before 1970.
func testEntries() []Entry {
	t := func(s, ns int64) time.Time { return time.Unix(s, ns) }
	return []Entry{
		{Kind: KindDir, Path: "a", Mode: 0o755, MTime: t(1700000000, 123456789)},
		{Kind: KindFile, Path: "a/empty", Mode: 0o600, MTime: t(1, 1)},
		{Kind: KindDir, Path: "a/sub", Mode: 0o700, MTime: t(-5, 999999999)},
		{Kind: KindFile, Path: "a/sub/large", Mode: 0o644, MTime: t(1800000000, 7), Size: 3<<20 + 17},
		{Kind: KindSymlink, Path: "a/sub/link", Mode: 0o777, MTime: t(1600000000, 0), Target: "../../top"},
		{Kind: KindFile, Path: "a-b", Mode: 0o000, MTime: t(0, 0), Size: 5},
		{Kind: KindFile, Path: "top", Mode: 0o4 | 0o40, MTime: t(1700000001, 1), Size: 100000},
	}
}

func writeEntries(t testing.TB, es []Entry) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if err := w.Add(e, randReader(uint64(i), e.Size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriterScanRoundTrip(t *testing.T) {
	es := testEntries()
	got, err := scanAll(bytes.NewReader(writeEntries(t, es)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(es) {
		t.Fatalf("scanned %d entries, wrote %d: %v", len(got), len(es), got)
	}
	for i, e := range es {
		want := scanned{Entry: e, got: e.Size, sum: sumOf(randReader(uint64(i), e.Size))}
		if g := got[i]; g.String() != want.String() || !g.MTime.Equal(e.MTime) {
			t.Errorf("entry %d:\n got %v\nwant %v", i, g, want)
		}
	}
}

// TestScanThenWriterReproducesWrite: what Scan reads, Writer writes back
// byte for byte, so a bucket remote hands out the stream a node sent.
func TestScanThenWriterReproducesWrite(t *testing.T) {
	dir := neutralFixture(t)
	if err := os.Chtimes(filepath.Join(dir, "top"), time.Unix(1, 2), time.Unix(1700000000, 999999999)); err != nil {
		t.Fatal(err)
	}
	var sent bytes.Buffer
	if err := Write(dir, &sent); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	w, err := NewWriter(&again)
	if err != nil {
		t.Fatal(err)
	}
	if err := Scan(bytes.NewReader(sent.Bytes()), w.Add); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sent.Bytes(), again.Bytes()) {
		t.Fatalf("Writer wrote %d bytes unlike Write's %d", again.Len(), sent.Len())
	}
}

// TestWriteScanEqualsTree: Scan of Write(dir) gives the tree as it is
// on disk, entry by entry in walk order.
func TestWriteScanEqualsTree(t *testing.T) {
	dir := neutralFixture(t)
	os.WriteFile(filepath.Join(dir, "db", "empty"), nil, 0o604)
	os.Chtimes(filepath.Join(dir, "db"), time.Now(), time.Unix(1234, 56789))
	var want []string
	walkTree(t, dir, func(p, rel string, info fs.FileInfo) {
		s := scanned{Entry: Entry{Path: rel, Mode: info.Mode().Perm(), MTime: info.ModTime()}}
		switch {
		case info.IsDir():
			s.Kind = KindDir
		case info.Mode().IsRegular():
			s.Kind, s.Size, s.got = KindFile, info.Size(), info.Size()
			b, _ := os.ReadFile(p)
			s.sum = sha256.Sum256(b)
		default:
			s.Kind = KindSymlink
			s.Target, _ = os.Readlink(p)
		}
		if s.Kind != KindFile {
			s.sum = sha256.Sum256(nil)
		}
		want = append(want, s.String())
	})
	var buf bytes.Buffer
	if err := Write(dir, &buf); err != nil {
		t.Fatal(err)
	}
	got, err := scanAll(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var gs []string
	for _, g := range got {
		gs = append(gs, g.String())
	}
	if a, b := strings.Join(gs, "\n"), strings.Join(want, "\n"); a != b {
		t.Fatalf("Scan of Write:\n%s\nthe tree:\n%s", a, b)
	}
}

// TestScanDamagedStreams: every cut and every flipped bit gives
// ErrCorrupt, however much of each file fn reads.
func TestScanDamagedStreams(t *testing.T) {
	es := testEntries()
	for i := range es {
		if es[i].Size > 10 {
			es[i].Size = 10 // small enough to flip every bit
		}
	}
	stream := writeEntries(t, es)
	for _, readAll := range []bool{true, false} {
		scan := func(b []byte) error {
			return Scan(bytes.NewReader(b), func(e Entry, c io.Reader) error {
				if readAll {
					_, err := io.Copy(io.Discard, c)
					return err
				}
				return nil
			})
		}
		if err := scan(stream); err != nil {
			t.Fatal(err)
		}
		for n := range len(stream) {
			if err := scan(stream[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("cut at %d of %d: %v", n, len(stream), err)
			}
		}
		if err := scan(append(bytes.Clone(stream), 0)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a byte after the trailer: %v", err)
		}
		for i := range len(stream) * 8 {
			bad := bytes.Clone(stream)
			bad[i/8] ^= 1 << (i % 8)
			if err := scan(bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bit %d of byte %d flipped: %v", i%8, i/8, err)
			}
		}
	}
}

// TestScanRefusesMalformedRecords: records a Writer would refuse, hand
// made with a valid trailer, are ErrCorrupt before fn sees them.
func TestScanRefusesMalformedRecords(t *testing.T) {
	dir := func(p string) string { return "d" + string(rune(len(p))) + p + "\x00\x00" }
	file := func(p string) string { return "f" + string(rune(len(p))) + p + "\x00\x00\x00" }
	for name, records := range map[string]string{
		"escape":                  file("../x"),
		"absolute":                file("/x"),
		"double slash":            file("a//b"),
		"dot":                     file("."),
		"backslash":               file(`a\b`),
		"NUL":                     file("a\x00b"),
		"empty path":              "f\x00\x00\x00\x00",
		"parent missing":          file("a/b"),
		"parent is a file":        file("a") + file("a/b"),
		"parent is a symlink":     "l\x01a\x00\x00\x01b" + file("a/b"),
		"twice":                   file("a") + file("a"),
		"dir twice":               dir("a") + dir("a"),
		"out of order":            file("b") + file("a"),
		"child after sibling":     dir("a") + file("b") + file("a/c"),
		"slash sorts first":       file("a-b") + dir("a"),
		"bad mode":                "f\x01a\x80\x04\x00\x00",
		"unknown kind":            "x\x01a\x00\x00",
		"trailer mark is no kind": "E\x01a\x00\x00",
		"empty symlink target":    "l\x01a\x00\x00\x00",
		"NUL in symlink target":   "l\x01a\x00\x00\x02a\x00",
		"huge size":               "f\x01a\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
	} {
		body := neutralMagic + records
		sum := sha256.Sum256([]byte(body))
		stream := body + "e" + string(sum[:])
		seen := 0
		err := Scan(strings.NewReader(stream), func(e Entry, c io.Reader) error { seen++; return nil })
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
		if err := Read(strings.NewReader(stream), t.TempDir()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Read gave %v", name, err)
		}
	}
	// The well-formed ones among them pass, so the cases above fail for
	// what they say.
	for _, records := range []string{"", dir("a") + file("a/c") + file("a-b"), dir("a") + dir("a/b") + file("a/b/c") + file("a/d") + file("b")} {
		body := neutralMagic + records
		sum := sha256.Sum256([]byte(body))
		if _, err := scanAll(strings.NewReader(body + "e" + string(sum[:]))); err != nil {
			t.Errorf("%q: %v", records, err)
		}
	}
}

func TestScanPassesFnErrorsThrough(t *testing.T) {
	stream := writeEntries(t, testEntries())
	mine := errors.New("the upload failed")
	calls := 0
	err := Scan(bytes.NewReader(stream), func(e Entry, c io.Reader) error {
		if calls++; e.Kind == KindFile && e.Size > 0 {
			io.CopyN(io.Discard, c, 3)
			return mine
		}
		return nil
	})
	if err != mine {
		t.Fatalf("got %v, want fn's error as is", err)
	}
	if calls != 4 {
		t.Fatalf("fn was called %d times after failing", calls)
	}
}

// TestScanSkipsWhatFnLeaves: entries after a file fn read partly, or
// not at all, come out right, in either read style.
func TestScanSkipsWhatFnLeaves(t *testing.T) {
	es := testEntries()
	stream := writeEntries(t, es)
	for _, take := range []int64{0, 1, 4095, 64<<10 + 3, 1 << 20} {
		for _, readByByte := range []bool{false, true} {
			i := 0
			err := Scan(bytes.NewReader(stream), func(e Entry, c io.Reader) error {
				want := sumOf(io.LimitReader(randReader(uint64(i), e.Size), min(take, e.Size)))
				i++
				var got [sha256.Size]byte
				if readByByte {
					got = sumOf(io.LimitReader(struct{ io.Reader }{c}, take))
				} else {
					got = sumOf(io.LimitReader(c, take))
				}
				if got != want {
					return fmt.Errorf("the first %d bytes of %s differ", take, e.Path)
				}
				return nil
			})
			if err != nil || i != len(es) {
				t.Fatalf("taking %d (by byte %v): %d entries, %v", take, readByByte, i, err)
			}
		}
	}
}

// failingReader gives n bytes of r, then err.
type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

// TestScanReadErrorIsNotCorrupt: a failing source (a dropped
// connection) is reported as such, wherever it fails.
func TestScanReadErrorIsNotCorrupt(t *testing.T) {
	stream := writeEntries(t, testEntries())
	cut := errors.New("connection reset")
	for _, n := range []int{0, 2, 9, 30, 200, 2 << 20, len(stream) - 3} {
		_, err := scanAll(&failingReader{bytes.NewReader(stream), n, cut})
		if !errors.Is(err, cut) || errors.Is(err, ErrCorrupt) {
			t.Errorf("source failing after %d bytes: %v", n, err)
		}
	}
}

func TestWriterRefusesBadEntries(t *testing.T) {
	mt := time.Unix(1700000000, 0)
	f := func(p string) Entry { return Entry{Kind: KindFile, Path: p, MTime: mt} }
	for name, e := range map[string]Entry{
		"empty path":         f(""),
		"absolute":           f("/a"),
		"escape":             f("../a"),
		"dot-dot inside":     f("a/../b"),
		"double slash":       f("a//b"),
		"trailing slash":     f("a/"),
		"dot":                f("."),
		"backslash":          f(`a\b`),
		"NUL":                f("a\x00b"),
		"long path":          f(strings.Repeat("a", maxNeutralPath+1)),
		"kind":               {Kind: 'x', Path: "a", MTime: mt},
		"trailer kind":       {Kind: trailerMark, Path: "a", MTime: mt},
		"mode type bits":     {Kind: KindDir, Path: "a", Mode: fs.ModeDir | 0o755, MTime: mt},
		"setuid":             {Kind: KindFile, Path: "a", Mode: fs.ModeSetuid | 0o755, MTime: mt},
		"negative size":      {Kind: KindFile, Path: "a", Size: -1, MTime: mt},
		"huge size":          {Kind: KindFile, Path: "a", Size: maxNeutralSize + 1, MTime: mt},
		"dir with size":      {Kind: KindDir, Path: "a", Size: 1, MTime: mt},
		"dir with target":    {Kind: KindDir, Path: "a", Target: "b", MTime: mt},
		"symlink no target":  {Kind: KindSymlink, Path: "a", MTime: mt},
		"symlink NUL target": {Kind: KindSymlink, Path: "a", Target: "b\x00", MTime: mt},
		"zero time":          {Kind: KindFile, Path: "a"},
		"time out of range":  f("a"),
		"parent missing":     f("b/x"),
		"under a file":       f("a/f/x"),
		"under a symlink":    f("a/l/x"),
		"before previous":    f("a/e"),
		"again":              f("a/l"),
		"dir again":          {Kind: KindDir, Path: "a", MTime: mt},
	} {
		if name == "time out of range" {
			e.MTime = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, ok := range []Entry{{Kind: KindDir, Path: "a", MTime: mt}, f("a/f"), {Kind: KindSymlink, Path: "a/l", Target: "f", MTime: mt}} {
			if err := w.Add(ok, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Add(e, strings.NewReader("")); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: Add gave %v, want a one-line error", name, err)
		}
		// A refused entry writes nothing: the stream goes on, in the
		// directory it was in.
		if err := w.Add(f("a/m"), nil); err != nil {
			t.Errorf("%s: the stream is unusable after a refused entry: %v", name, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := scanAll(&buf)
		if err != nil || len(got) != 4 {
			t.Errorf("%s: the stream holds %v, %v", name, got, err)
		}
	}
}

func TestWriterRefusesWrongContentLength(t *testing.T) {
	for _, c := range []struct {
		size    int64
		content string
	}{{10, "short"}, {2, "long"}, {1, ""}, {0, "x"}} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		e := Entry{Kind: KindFile, Path: "a", Size: c.size, MTime: time.Unix(1, 0)}
		err = w.Add(e, strings.NewReader(c.content))
		if err == nil {
			t.Fatalf("size %d with %q: no error", c.size, c.content)
		}
		// The record is half written: the stream is unusable.
		if err2 := w.Add(Entry{Kind: KindFile, Path: "b", MTime: time.Unix(1, 0)}, nil); err2 == nil {
			t.Fatalf("size %d with %q: Add went on after %v", c.size, c.content, err)
		}
		if err2 := w.Close(); err2 == nil {
			t.Fatalf("size %d with %q: Close wrote a trailer after %v", c.size, c.content, err)
		}
	}
	// A nil content is an empty file's.
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	if err := w.Add(Entry{Kind: KindFile, Path: "a", MTime: time.Unix(1, 0)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("a second Close wrote a second trailer")
	}
	if err := w.Add(Entry{Kind: KindFile, Path: "b", MTime: time.Unix(1, 0)}, nil); err == nil {
		t.Fatal("Add after Close")
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestScanStreamsLargeFiles: a 1 GiB file goes from Writer through Scan
// with memory for buffers only.
func TestScanStreamsLargeFiles(t *testing.T) {
	const size = 1 << 30
	pr, pw := io.Pipe()
	go func() {
		w, err := NewWriter(pw)
		if err == nil {
			err = w.Add(Entry{Kind: KindFile, Path: "big", MTime: time.Unix(1, 0), Size: size}, io.LimitReader(zeros{}, size))
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var got int64
	err := Scan(pr, func(e Entry, c io.Reader) error {
		var err error
		got, err = io.Copy(io.Discard, c)
		return err
	})
	runtime.ReadMemStats(&after)
	if err != nil || got != size {
		t.Fatalf("read %d of %d bytes: %v", got, size, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("streaming 1 GiB allocated %d bytes", alloc)
	}
}

// FuzzScan: any stream either scans whole, every entry valid and every
// content exactly its size, and then writes back through Writer as a
// stream that scans to the same entries; or fails with ErrCorrupt. fn
// reads all, some or none of each file, as consumers do.
func FuzzScan(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(neutralFixtureSized(f, 300), &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes(), uint8(0))
	small := testEntries()
	for i := range small {
		small[i].Size = min(small[i].Size, 40)
	}
	f.Add(writeEntries(f, small), uint8(5))
	f.Add([]byte(neutralMagic+"l\x04link\x00\x00\x02..e"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, take uint8) {
		var ord order
		var got []scanned
		err := Scan(bytes.NewReader(data), func(e Entry, c io.Reader) error {
			if err := e.check(false); err != nil {
				t.Fatalf("Scan passed a bad entry: %v", err)
			}
			if err := ord.add(&e); err != nil {
				t.Fatalf("Scan passed an entry out of order: %v", err)
			}
			s := scanned{Entry: e}
			switch len(got) % 3 {
			case 0: // all of it
				h := sha256.New()
				n, err := io.Copy(h, c)
				if err != nil {
					return err
				}
				if n != e.Size {
					t.Fatalf("%s: content gave %d bytes of %d", e.Path, n, e.Size)
				}
				s.got = n
				h.Sum(s.sum[:0])
			case 1: // some
				io.CopyN(io.Discard, c, int64(take))
			}
			got = append(got, s)
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("a bad stream gave %v, not ErrCorrupt", err)
			}
			return
		}
		var again bytes.Buffer
		w, err := NewWriter(&again)
		if err != nil {
			t.Fatal(err)
		}
		err = Scan(bytes.NewReader(data), w.Add)
		if err == nil {
			err = w.Close()
		}
		if err != nil {
			t.Fatalf("writing back what was scanned: %v", err)
		}
		back, err := scanAll(&again)
		if err != nil || len(back) != len(got) {
			t.Fatalf("scanning what was written back: %d entries of %d, %v", len(back), len(got), err)
		}
		for i, g := range got {
			b := back[i]
			if i%3 != 0 { // content not read whole: compare the entries only
				b.got, b.sum = g.got, g.sum
			}
			if b.String() != g.String() {
				t.Fatalf("entry %d changed on a round trip:\n%v\n%v", i, g, b)
			}
		}
	})
}

// pieces is a SizedContent of byte slices that claims size bytes.
type pieces struct {
	parts [][]byte
	size  int64
}

func (p pieces) Size() int64 { return p.size }
func (p pieces) Read([]byte) (int, error) {
	return 0, errors.New("read: Add should have used WriteTo")
}
func (p pieces) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, b := range p.parts {
		m, err := w.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// A SizedContent goes in through WriteTo, and is held to its size: more
// bytes or fewer fail the entry.
func TestWriterTakesSizedContent(t *testing.T) {
	a, b := bytes.Repeat([]byte("a"), 70000), []byte("bcd")
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{Kind: KindFile, Path: "f", Mode: 0o644, MTime: time.Unix(1, 0), Size: int64(len(a) + len(b))}
	if err := w.Add(e, pieces{[][]byte{a, b}, e.Size}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []byte
	err = Scan(&buf, func(e Entry, content io.Reader) error {
		got, err = io.ReadAll(content)
		return err
	})
	if err != nil || !bytes.Equal(got, append(append([]byte(nil), a...), b...)) {
		t.Fatalf("read back %d bytes, err %v; want %d", len(got), err, len(a)+len(b))
	}
	for _, c := range []struct {
		name  string
		parts [][]byte
	}{{"longer", [][]byte{a, b, b}}, {"shorter", [][]byte{a}}} {
		w, _ := NewWriter(io.Discard)
		if err := w.Add(e, pieces{c.parts, e.Size}); err == nil {
			t.Errorf("content %s than its size was taken", c.name)
		}
	}
}
