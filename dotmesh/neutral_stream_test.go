package dotmesh

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func neutralFixture(t testing.TB) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "db", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "db", "sub", "f"), []byte("hello"), 0o640)
	os.WriteFile(filepath.Join(dir, "top"), bytes.Repeat([]byte("x"), 100000), 0o600)
	os.Symlink("db/sub/f", filepath.Join(dir, "link"))
	return dir
}

func TestNeutralRoundTripAndCorruption(t *testing.T) {
	src := neutralFixture(t)
	var buf bytes.Buffer
	if err := writeNeutral(src, &buf); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := readNeutral(bytes.NewReader(buf.Bytes()), dst); err != nil {
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
		if err := readNeutral(bytes.NewReader(bad), t.TempDir()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped byte %d: %v", at, err)
		}
	}
	if err := readNeutral(bytes.NewReader(buf.Bytes()[:buf.Len()-10]), t.TempDir()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: %v", err)
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
		if err := readNeutral(&buf, t.TempDir()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%q: %v", name, err)
		}
	}
}

func FuzzReadNeutral(f *testing.F) {
	var buf bytes.Buffer
	if err := writeNeutral(neutralFixture(f), &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(neutralMagic + "l\x04link\x00\x00\x02..e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		outer := t.TempDir()
		dir := filepath.Join(outer, "in")
		os.Mkdir(dir, 0o755)
		_ = readNeutral(bytes.NewReader(data), dir)
		// Nothing may appear next to the target directory.
		ents, _ := os.ReadDir(outer)
		if len(ents) != 1 {
			t.Fatalf("the stream wrote outside its directory: %v", ents)
		}
	})
}
