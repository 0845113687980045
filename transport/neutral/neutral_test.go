package neutral

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func neutralFixture(t testing.TB) string { return neutralFixtureSized(t, 100000) }

// neutralFixtureSized is a tree with a directory, files, a symlink and a
// file of size bytes.
func neutralFixtureSized(t testing.TB, size int) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "db", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "db", "sub", "f"), []byte("hello"), 0o640)
	os.WriteFile(filepath.Join(dir, "top"), bytes.Repeat([]byte("x"), size), 0o600)
	os.Symlink("db/sub/f", filepath.Join(dir, "link"))
	return dir
}

func TestNeutralRoundTripAndCorruption(t *testing.T) {
	src := neutralFixture(t)
	var buf bytes.Buffer
	if err := Write(src, &buf); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := Read(bytes.NewReader(buf.Bytes()), dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "db", "sub", "f")); string(b) != "hello" {
		t.Fatalf("got %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "db/sub/f" {
		t.Fatalf("link %q", l)
	}
	if st, _ := os.Stat(filepath.Join(dst, "db", "sub", "f")); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode())
	}
	for _, at := range []int{len(buf.Bytes()) / 2, len(buf.Bytes()) - 3} {
		bad := bytes.Clone(buf.Bytes())
		bad[at] ^= 1
		if err := Read(bytes.NewReader(bad), t.TempDir()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped byte %d: %v", at, err)
		}
	}
	if err := Read(bytes.NewReader(buf.Bytes()[:buf.Len()-10]), t.TempDir()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: %v", err)
	}
}

// TestWriteBytesAreStable: nodes of different versions exchange these
// streams, so the bytes of a known tree are fixed, record by record.
func TestWriteBytesAreStable(t *testing.T) {
	dir := t.TempDir()
	mt := time.Unix(1700000000, 5)
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "f"), []byte("hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{"d/f": 0o640, "d": 0o750} {
		if err := os.Chmod(filepath.Join(dir, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"d/f", "d"} {
		if err := os.Chtimes(filepath.Join(dir, p), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := Write(dir, &buf); err != nil {
		t.Fatal(err)
	}
	want := "444d4e31" + // DMN1
		"64" + "01" + "64" + "e803" + "8a80d0e2c6bfce972f" + // 'd', "d", 0750, mtime
		"66" + "03" + "642f66" + "a003" + "8a80d0e2c6bfce972f" + "03" + "68690a" + // 'f', "d/f", 0640, mtime, 3 bytes "hi\n"
		"65" + "11dc0d723e53746fe27e3b2b4f36cddf7e868e8a57661f716cf1e1766a71ce0f" // 'e', SHA-256
	if got := fmt.Sprintf("%x", buf.Bytes()); got != want {
		t.Fatalf("stream bytes changed:\n got %s\nwant %s", got, want)
	}
	if err := Read(bytes.NewReader(buf.Bytes()), t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

func TestNeutralRefusesEscapes(t *testing.T) {
	for _, name := range []string{"../x", "/etc/x", "a/../../x", "a//b", "."} {
		var buf bytes.Buffer
		buf.WriteString(neutralMagic)
		buf.WriteByte('f')
		buf.WriteByte(byte(len(name)))
		buf.WriteString(name)
		buf.Write([]byte{0o6, 0, 0}) // mode, mtime, size
		if err := Read(&buf, t.TempDir()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%q: %v", name, err)
		}
	}
}

// TestReadShortStreamIsCheap: a stream that ends or fails early
// costs little memory. The reader used to allocate a 1 MiB buffer for
// every stream, so FuzzRead spent its time zeroing buffers while
// minimizing inputs and reported no executions for minutes.
func TestReadShortStreamIsCheap(t *testing.T) {
	dir := t.TempDir()
	data := []byte(neutralMagic + "x")
	const runs = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if err := Read(bytes.NewReader(data), dir); !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 128<<10 {
		t.Fatalf("reading a 5-byte stream allocates %d bytes", per)
	}
}

// FuzzRead: any stream either unpacks into its directory (and
// nowhere else), and then writes back as a stream that unpacks to the
// same tree, or fails with ErrCorrupt. The seed is small: the fuzzer
// minimizes interesting inputs byte by byte, which a 100 KB seed makes
// take minutes.
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(neutralFixtureSized(f, 300), &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(neutralMagic + "l\x04link\x00\x00\x02..e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		outer := t.TempDir()
		dir := filepath.Join(outer, "in")
		os.Mkdir(dir, 0o755)
		err := Read(bytes.NewReader(data), dir)
		// Nothing may appear next to the target directory.
		ents, _ := os.ReadDir(outer)
		if len(ents) != 1 {
			t.Fatalf("the stream wrote outside its directory: %v", ents)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("a bad stream gave %v, not ErrCorrupt", err)
			}
			return
		}
		var again bytes.Buffer
		if err := Write(dir, &again); err != nil {
			t.Fatalf("writing back what was read: %v", err)
		}
		dir2 := filepath.Join(outer, "again")
		os.Mkdir(dir2, 0o755)
		if err := Read(bytes.NewReader(again.Bytes()), dir2); err != nil {
			t.Fatalf("reading back what was written: %v", err)
		}
		if a, b := treeSummary(t, dir), treeSummary(t, dir2); a != b {
			t.Fatalf("the tree changed on a round trip:\n%s\n%s", a, b)
		}
	})
}

// treeSummary lists what a neutral stream keeps of a tree: paths, kinds,
// permissions, contents, link targets and mtimes (not of symlinks, whose
// times a receiver cannot set through os.Root).
func treeSummary(t *testing.T, dir string) string {
	var sb strings.Builder
	walkTree(t, dir, func(p, rel string, info fs.FileInfo) {
		fmt.Fprintf(&sb, "%s %v", rel, info.Mode())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&sb, " -> %q", target)
		case info.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			fmt.Fprintf(&sb, " %x %d", sha256.Sum256(b), info.ModTime().UnixNano())
		default:
			fmt.Fprintf(&sb, " %d", info.ModTime().UnixNano())
		}
		sb.WriteByte('\n')
	})
	return sb.String()
}

// walkTree calls fn for everything below dir, in walk order, with its
// path, its path relative to dir and its lstat.
func walkTree(t testing.TB, dir string, fn func(p, rel string, info fs.FileInfo)) {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fn(p, rel, info)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriteClampsTimesAndRefusesBadNames: a time past the stream's range
// is sent at its end, not failing the push; a name no receiver could
// create fails the sender, naming it.
func TestWriteClampsTimesAndRefusesBadNames(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "future")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not os.Chtimes: it goes through UnixNano, which cannot hold 2300.
	far := syscall.Timespec{Sec: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC).Unix()}
	if err := syscall.UtimesNano(p, []syscall.Timespec{far, far}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(dir, &buf); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := Read(&buf, dst); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dst, "future")); err != nil || st.ModTime().Year() != 2262 {
		t.Fatalf("a file of 2300 arrived as %v, %v", st.ModTime(), err)
	}
	if err := os.WriteFile(filepath.Join(dir, `a\b`), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, io.Discard); err == nil || !strings.Contains(err.Error(), `"a\\b"`) {
		t.Fatalf("a name with a backslash: %v", err)
	}
}
