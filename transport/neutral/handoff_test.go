package neutral

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"
)

// pipeEntries writes files of the given pieces (a mix of pieces under
// and over handOverMin, one file across several of each) to w as an
// unchecked stream, and closes w with the Writer's error.
func pipeEntries(w *PipeWriter, files [][][]byte) {
	sw, err := NewWriter(UncheckedWriter(w))
	if err == nil {
		err = sw.Add(Entry{Kind: KindDir, Path: "d", Mode: 0o755, MTime: time.Unix(1, 0)}, nil)
	}
	for i, parts := range files {
		if err != nil {
			break
		}
		var size int64
		for _, p := range parts {
			size += int64(len(p))
		}
		e := Entry{Kind: KindFile, Path: "d/f" + string(rune('a'+i)), Mode: 0o644, MTime: time.Unix(2, 0), Size: size}
		err = sw.Add(e, pieces{parts, size})
	}
	if err == nil {
		err = sw.Close()
	}
	w.CloseWithError(err)
}

// inside reports whether p lies inside one of bufs.
func inside(p []byte, bufs [][][]byte) bool {
	a := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	for _, f := range bufs {
		for _, b := range f {
			s := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
			if a >= s && a+uintptr(len(p)) <= s+uintptr(len(b)) {
				return true
			}
		}
	}
	return false
}

// handOverRecorder keeps what is written to it and counts the writes
// whose bytes are the sender's own buffers.
type handOverRecorder struct {
	bytes.Buffer
	sent     [][][]byte
	handed   int
	handedAt int64
}

func (h *handOverRecorder) Write(p []byte) (int, error) {
	if inside(p, h.sent) {
		h.handed++
		h.handedAt += int64(len(p))
	}
	return h.Buffer.Write(p)
}

// TestPipeHandsOver: through a Pipe, an unchecked stream's records read
// back as written, and the pieces of content of handOverMin bytes or
// more reach the file's writer as the sender's own buffers, not copies.
func TestPipeHandsOver(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	piece := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	files := [][][]byte{
		{piece(100), piece(handOverMin), piece(3)},
		{piece(1 << 20), piece(5), piece(300 << 10)},
		{piece(7)},
		{piece(2<<20 + 1)},
	}
	var large int64
	for _, f := range files {
		for _, p := range f {
			if len(p) >= handOverMin {
				large += int64(len(p))
			}
		}
	}
	pr, pw := Pipe()
	go pipeEntries(pw, files)
	rec := &handOverRecorder{sent: files}
	var got [][]byte
	err := Scan(UncheckedReader(pr), func(e Entry, content io.Reader) error {
		if e.Kind != KindFile {
			return nil
		}
		rec.Reset()
		if _, err := content.(io.WriterTo).WriteTo(rec); err != nil {
			return err
		}
		got = append(got, bytes.Clone(rec.Bytes()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("read %d files, want %d", len(got), len(files))
	}
	for i, f := range files {
		if !bytes.Equal(got[i], bytes.Join(f, nil)) {
			t.Fatalf("file %d differs", i)
		}
	}
	if rec.handedAt != large {
		t.Fatalf("%d bytes in %d writes reached the file as the sender's buffers, want the %d of the large pieces", rec.handedAt, rec.handed, large)
	}
}

// TestPipeCutOff: a stream whose writer fails inside a file's content
// is refused with that failure, not taken as a whole file, and a reader
// that stops ends the writer's Write.
func TestPipeCutOff(t *testing.T) {
	pr, pw := Pipe()
	boom := errors.New("the bucket went away")
	go func() {
		sw, _ := NewWriter(UncheckedWriter(pw))
		big := make([]byte, 1<<20)
		e := Entry{Kind: KindFile, Path: "f", Mode: 0o644, MTime: time.Unix(2, 0), Size: 3 << 20}
		// Two of the three pieces come; then the writer fails.
		sw.Add(e, pieces{[][]byte{big, big}, e.Size})
		pw.CloseWithError(boom)
	}()
	err := Read(UncheckedReader(pr), t.TempDir())
	if !errors.Is(err, boom) {
		t.Fatalf("a cut stream read as %v, want %v", err, boom)
	}

	pr, pw = Pipe()
	werr := make(chan error, 1)
	go func() {
		_, err := pw.Write(make([]byte, 1<<20))
		werr <- err
	}()
	var sink bytes.Buffer
	if n, err := pr.WriteNTo(&sink, 1000); n != 1000 || err != nil {
		t.Fatalf("WriteNTo took %d bytes, err %v; want 1000", n, err)
	}
	pr.Close()
	if err := <-werr; !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("a write to a closed reader: %v, want %v", err, io.ErrClosedPipe)
	}
	if _, err := pw.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("a later write: %v", err)
	}
	// The writer's close ends the reader's reads with io.EOF.
	pr, pw = Pipe()
	pw.Close()
	if n, err := pr.WriteNTo(&sink, 1); n != 0 || err != io.EOF {
		t.Fatalf("WriteNTo of a closed writer: %d, %v", n, err)
	}
	if _, err := pr.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("Read of a closed writer: %v", err)
	}
}

// FuzzPipeScan: a stream read through a Pipe, in pieces of the sizes
// cuts gives (the large ones handed over), scans as the same bytes read
// from memory do: the same records and contents, or a failure both ways.
func FuzzPipeScan(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(neutralFixtureSized(f, 3000), UncheckedWriter(&buf)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes(), []byte{0, 3, 255, 7})
	f.Add(buf.Bytes()[:buf.Len()/2], []byte{1})
	f.Add([]byte(neutralMagic+"f\x01a\x00\x00\x05abcdee"), []byte{0})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		if len(data) > 256<<10 {
			return // a piece a byte: slow, and no new paths
		}
		want, werr := scanAll(UncheckedReader(bytes.NewReader(data)))
		pr, pw := Pipe()
		go func() {
			rest := data
			for i := 0; len(rest) > 0; i++ {
				n := len(rest)
				if len(cuts) > 0 {
					n = min(n, int(cuts[i%len(cuts)])*64+1)
				}
				if _, err := pw.Write(rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
			pw.Close()
		}()
		got, gerr := scanAll(UncheckedReader(pr))
		pr.Close()
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("from memory: %v; through a Pipe: %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%d records through a Pipe, %d from memory", len(got), len(want))
		}
		for i := range want {
			if got[i].String() != want[i].String() {
				t.Fatalf("record %d: %v through a Pipe, %v from memory", i, got[i], want[i])
			}
		}
	})
}
