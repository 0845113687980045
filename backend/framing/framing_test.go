package framing_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/framing"
	"github.com/dotmesh-io/dotmesh/backend/framing/framingtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var testFormat = framing.Format{Name: "test stream", Magic: "DMTEST\x00\x01", Full: 'F', Incremental: 'I'}

func frame(t testing.TB, h framing.Header, data []byte, chunk int) []byte {
	return framingtest.Frame(t, testFormat, h, data, chunk)
}

func unframe(in []byte) (framing.Header, []byte, error) {
	h, fr, err := testFormat.NewReader(bytes.NewReader(in))
	if err != nil {
		return h, nil, err
	}
	data, err := io.ReadAll(fr)
	return h, data, err
}

func headers() []framing.Header {
	return []framing.Header{
		{Target: dotmesh.NewCommitID()},
		{Target: dotmesh.NewCommitID(), Base: dotmesh.NewCommitID()},
	}
}

func TestRoundTrip(t *testing.T) {
	payload := make([]byte, 3*framing.MaxFrame+12345)
	rand.Read(payload)
	for _, h := range headers() {
		for _, chunk := range []int{1, 1000, 1 << 10, framing.MaxFrame + 7, 5 << 20} {
			data := payload[:min(len(payload), chunk*50)]
			s := frame(t, h, data, chunk)
			gh, got, err := unframe(s)
			if err != nil || gh != h || !bytes.Equal(got, data) {
				t.Fatalf("round trip (chunk %d): header %+v, %d bytes, %v", chunk, gh, len(got), err)
			}
		}
	}
	gh, got, err := unframe(frame(t, framing.Header{Target: dotmesh.NewCommitID()}, nil, 1))
	if err != nil || len(got) != 0 || gh.Base != "" {
		t.Fatalf("empty payload: %d bytes, base %q, %v", len(got), gh.Base, err)
	}
}

// TestWireFormat pins the layout byte by byte.
func TestWireFormat(t *testing.T) {
	target := dotmesh.CommitID("0123456789abcdef0123456789abcdef")
	base := dotmesh.CommitID("fedcba9876543210fedcba9876543210")
	s := frame(t, framing.Header{Target: target, Base: base}, []byte("hello"), 3)
	want := "DMTEST\x00\x01" + "I" + string(target) + string(base) +
		"\x00\x00\x00\x03hel" + "\x00\x00\x00\x02lo" +
		"\x00\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x05"
	if !strings.HasPrefix(string(s), want) || len(s) != len(want)+32 {
		t.Fatalf("stream:\n%s\nwant prefix\n%s", hex.Dump(s), hex.Dump([]byte(want)))
	}
	full := frame(t, framing.Header{Target: target}, nil, 1)
	if want := "DMTEST\x00\x01" + "F" + string(target) + strings.Repeat("\x00", 32) + strings.Repeat("\x00", 12); !strings.HasPrefix(string(full), want) {
		t.Fatalf("full stream:\n%s", hex.Dump(full))
	}
}

func TestDetectsDamage(t *testing.T) {
	payload := make([]byte, 300000)
	rand.Read(payload)
	for _, h := range headers() {
		data := frame(t, h, payload, 100000)
		for n := 0; n < len(data); n += 997 {
			if _, _, err := unframe(data[:n]); !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("cut at %d: %v", n, err)
			}
		}
		for n := len(data) - 50; n < len(data); n++ {
			if _, _, err := unframe(data[:n]); !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("cut at %d: %v", n, err)
			}
		}
		for pos := 0; pos < len(data); pos += 4999 {
			bad := bytes.Clone(data)
			bad[pos] ^= 1
			if _, _, err := unframe(bad); !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("bit flipped at %d: %v", pos, err)
			}
		}
		last := bytes.Clone(data)
		last[len(last)-1] ^= 1
		if _, _, err := unframe(last); !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("last byte flipped: %v", err)
		}
		huge := bytes.Clone(data)
		copy(huge[testFormat.HeaderLen():], []byte{0xff, 0xff, 0xff, 0xff})
		if _, _, err := unframe(huge); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "exceeds") {
			t.Fatalf("oversized frame: %v", err)
		}
		long := append(bytes.Clone(data[:len(data)-44]), 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0) // trailer claims more
		if _, _, err := unframe(long); !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("wrong length in trailer: %v", err)
		}
	}
}

func TestBadHeaders(t *testing.T) {
	target, base := dotmesh.NewCommitID(), dotmesh.NewCommitID()
	good := frame(t, framing.Header{Target: target, Base: base}, []byte("x"), 1)
	kind := len(testFormat.Magic)
	edit := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	for name, in := range map[string][]byte{
		"other magic":       edit(func(b []byte) { copy(b, "DMZFS\x00\x00\x01") }),
		"unknown kind":      edit(func(b []byte) { b[kind] = 'X' }),
		"full with a base":  edit(func(b []byte) { b[kind] = 'F' }),
		"target not hex":    edit(func(b []byte) { b[kind+1] = 'Z' }),
		"base not hex":      edit(func(b []byte) { b[kind+1+32] = '-' }),
		"incremental, zero": edit(func(b []byte) { copy(b[kind+1+32:], make([]byte, 32)) }),
		"short header":      good[:testFormat.HeaderLen()-1],
		"nothing":           nil,
	} {
		if _, _, err := unframe(in); !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	other := framing.Format{Name: "other stream", Magic: "DMOTHER\x01", Full: 0, Incremental: 1}
	if _, _, err := other.NewReader(bytes.NewReader(good)); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "not a dotmesh other stream") {
		t.Errorf("another format's stream: %v", err)
	}
}

type failingReader struct{ r io.Reader }

var errBroken = errors.New("connection reset")

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errBroken
	}
	return n, err
}

func TestErr(t *testing.T) {
	s := frame(t, framing.Header{Target: dotmesh.NewCommitID()}, bytes.Repeat([]byte("data "), 1000), 100)
	_, fr, err := testFormat.NewReader(bytes.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(fr); err != nil || fr.Err() != nil {
		t.Fatalf("intact stream: %v, Err %v", err, fr.Err())
	}
	if n, err := fr.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read after the end: %d, %v", n, err)
	}

	_, fr, err = testFormat.NewReader(bytes.NewReader(s[:len(s)-1]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(fr); !errors.Is(err, dotmesh.ErrCorrupt) || fr.Err() != err {
		t.Fatalf("cut stream: %v, Err %v", err, fr.Err())
	}

	// A broken connection is not corruption, and says so.
	_, fr, err = testFormat.NewReader(&failingReader{bytes.NewReader(s[:len(s)/2])})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(fr); !errors.Is(err, errBroken) || errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("broken connection: %v", err)
	}
}

func TestReadError(t *testing.T) {
	if err := testFormat.ReadError("x", io.ErrUnexpectedEOF); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Errorf("EOF: %v", err)
	}
	c := testFormat.Corrupt("bad")
	if err := testFormat.ReadError("x", c); err != c {
		t.Errorf("ErrCorrupt: %v", err)
	}
	if err := testFormat.ReadError("x", errBroken); !errors.Is(err, errBroken) || errors.Is(err, dotmesh.ErrCorrupt) {
		t.Errorf("other: %v", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(frame(f, framing.Header{Target: dotmesh.NewCommitID(), Base: dotmesh.NewCommitID()}, []byte("some stream bytes"), 5))
	f.Add(frame(f, framing.Header{Target: dotmesh.NewCommitID()}, nil, 1))
	f.Add([]byte(testFormat.Magic))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, data, err := unframe(in)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("a bad stream from memory gave %v, not ErrCorrupt", err)
			}
			return
		}
		// Whatever is accepted must be exactly what a writer produces
		// (up to the frame boundaries, which the writer chooses, and
		// whatever follows the trailer, which is not read).
		again := frame(t, h, data, framing.MaxFrame)
		if !bytes.HasPrefix(in, again[:testFormat.HeaderLen()]) || !bytes.Contains(in, again[len(again)-44:]) || len(data) > len(in) {
			t.Fatalf("accepted a stream that does not re-encode: %d bytes in, %d out", len(in), len(data))
		}
	})
}
