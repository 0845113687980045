package neutral

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestUnchecked: a stream written to an UncheckedWriter carries the same
// records as a checked one and a zero trailer; an UncheckedReader reads
// it (and a checked stream too) as Scan and Read do, still refusing
// what is malformed; a checked reader refuses it as damaged.
func TestUnchecked(t *testing.T) {
	dir := neutralFixtureSized(t, 300<<10)
	var checked, unchecked bytes.Buffer
	if err := Write(dir, &checked); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, UncheckedWriter(&unchecked)); err != nil {
		t.Fatal(err)
	}
	n := checked.Len()
	if unchecked.Len() != n || !bytes.Equal(checked.Bytes()[:n-32], unchecked.Bytes()[:n-32]) {
		t.Fatal("the unchecked stream differs from the checked one before the trailer")
	}
	if !bytes.Equal(unchecked.Bytes()[n-32:], make([]byte, 32)) {
		t.Fatal("the unchecked stream's trailer is not zeros")
	}

	want, err := scanAll(bytes.NewReader(checked.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// The records of what Read unpacks, written again, symlink times
	// left out (unpacking cannot set them).
	unpack := func(r io.Reader) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "out")
		os.Mkdir(out, 0o755)
		if err := Read(r, out); err != nil {
			t.Fatalf("read: %v", err)
		}
		var again bytes.Buffer
		if err := Write(out, &again); err != nil {
			t.Fatal(err)
		}
		got, err := scanAll(&again)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i].Kind == KindSymlink {
				got[i].MTime = time.Time{}
			}
		}
		return fmt.Sprint(got)
	}
	ref := unpack(bytes.NewReader(checked.Bytes()))
	for name, stream := range map[string][]byte{"unchecked": unchecked.Bytes(), "checked": checked.Bytes()} {
		got, err := scanAll(UncheckedReader(bytes.NewReader(stream)))
		if err != nil {
			t.Fatalf("unchecked scan of the %s stream: %v", name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("unchecked scan of the %s stream: other records", name)
		}
		if unpack(UncheckedReader(bytes.NewReader(stream))) != ref {
			t.Fatalf("the %s stream read unchecked does not give the tree back", name)
		}
	}

	if _, err := scanAll(bytes.NewReader(unchecked.Bytes())); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a checked scan of an unchecked stream: %v, want ErrCorrupt", err)
	}
	for name, stream := range map[string][]byte{
		"truncated":        unchecked.Bytes()[:n-40],
		"no trailer":       unchecked.Bytes()[:n-33],
		"data after":       append(slices.Clone(unchecked.Bytes()), 0),
		"short trailer":    unchecked.Bytes()[:n-1],
		"not a stream":     []byte("hello"),
		"a delta as whole": deltaStream(t),
	} {
		if _, err := scanAll(UncheckedReader(bytes.NewReader(stream))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("unchecked scan of a stream %s: %v, want ErrCorrupt", name, err)
		}
	}
}

func deltaStream(t *testing.T) []byte {
	var buf bytes.Buffer
	w, err := NewDeltaWriter(UncheckedWriter(&buf), "base")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ScanDelta(UncheckedReader(bytes.NewReader(buf.Bytes())), nil, func(Entry, io.Reader) error { return nil }); err != nil {
		t.Fatalf("unchecked delta: %v", err)
	}
	return buf.Bytes()
}

// FuzzScanUnchecked: reading without the checksum passes only valid
// records in order, and whatever a checked scan takes, it takes alike.
func FuzzScanUnchecked(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(neutralFixtureSized(f, 300), UncheckedWriter(&buf)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(neutralMagic + "l\x04link\x00\x00\x02..e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ord order
		got, err := scanAll(UncheckedReader(bytes.NewReader(data)))
		for i := range got {
			if cerr := got[i].check(false); cerr != nil {
				t.Fatalf("an unchecked scan passed a bad entry: %v", cerr)
			}
			if oerr := ord.add(&got[i].Entry); oerr != nil {
				t.Fatalf("an unchecked scan passed an entry out of order: %v", oerr)
			}
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("an unchecked scan of bytes failed without ErrCorrupt: %v", err)
		}
		want, cerr := scanAll(bytes.NewReader(data))
		if cerr == nil && (err != nil || fmt.Sprint(got) != fmt.Sprint(want)) {
			t.Fatalf("a checked scan takes the stream, an unchecked one: %v", err)
		}
	})
}
