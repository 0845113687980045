package framing_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/framing"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// failAfter yields data, then err.
type failAfter struct {
	r   io.Reader
	err error
}

func (f failAfter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// FuzzReadError: a stream (a valid one, cut at any point) whose source
// fails with any error is classified by ReadError: running out of data is
// ErrCorrupt ("ended early"), a failing connection keeps its own error
// and is not called corrupt, and every message names the format.
func FuzzReadError(f *testing.F) {
	good := frame(f, framing.Header{Target: dotmesh.NewCommitID()}, []byte("payload bytes"), 4)
	for kind := range uint8(5) {
		f.Add(good, uint16(len(good)/2), kind, "connection reset by peer")
		f.Add(good, uint16(len(good)), kind, "")
	}
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16, kind uint8, msg string) {
		if int(cut) < len(stream) {
			stream = stream[:cut]
		}
		broken := errors.New("broken: " + msg)
		var injected error
		switch kind % 5 {
		case 0:
			injected = io.EOF
		case 1:
			injected = io.ErrUnexpectedEOF
		case 2:
			injected = fmt.Errorf("read: %w", io.ErrUnexpectedEOF)
		case 3:
			injected = broken
		default:
			injected = fmt.Errorf("%w: %s", dotmesh.ErrCorrupt, msg)
		}
		// ReadError itself, on the error alone.
		got := testFormat.ReadError("reading x", injected)
		switch {
		case got == nil:
			t.Fatal("nil")
		case kind%5 < 3 && (!errors.Is(got, dotmesh.ErrCorrupt) || !strings.Contains(got.Error(), "ended early")):
			t.Fatalf("%v: %v", injected, got)
		case kind%5 == 3 && (!errors.Is(got, broken) || errors.Is(got, dotmesh.ErrCorrupt) || !strings.Contains(got.Error(), testFormat.Name)):
			t.Fatalf("%v: %v", injected, got)
		case kind%5 == 4 && got != injected:
			t.Fatalf("%v: %v", injected, got)
		}
		// And through a Reader: the stream never ends without an error
		// unless its trailer verified, and the error is one of the two.
		h, fr, err := testFormat.NewReader(failAfter{bytes.NewReader(stream), injected})
		var data []byte
		if err == nil {
			data, err = io.ReadAll(fr)
		}
		if err == nil {
			if again := frame(t, h, data, framing.MaxFrame); len(again) > len(stream)+len(stream)/2+64 {
				t.Fatalf("accepted %d bytes as a %d-byte payload", len(stream), len(data))
			}
			return
		}
		if !errors.Is(err, dotmesh.ErrCorrupt) && !errors.Is(err, broken) {
			t.Fatalf("cut at %d, %v: %v", cut, injected, err)
		}
		if !strings.Contains(err.Error(), testFormat.Name) && !strings.Contains(err.Error(), msg) {
			t.Fatalf("%v does not name the format", err)
		}
	})
}
