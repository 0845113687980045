package btrfs

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func frame(t *testing.T, h streamHeader, payload []byte, chunk int) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := newFrameWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for p := payload; len(p) > 0; {
		n := min(chunk, len(p))
		if _, err := fw.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func unframe(data []byte) (streamHeader, []byte, error) {
	fr, err := newFrameReader(bytes.NewReader(data))
	if err != nil {
		return streamHeader{}, nil, err
	}
	out, err := io.ReadAll(fr)
	return fr.header, out, err
}

func TestFrameRoundTrip(t *testing.T) {
	payload := make([]byte, 3*maxFrame+12345)
	rand.Read(payload)
	for _, h := range []streamHeader{
		{Commit: dotmesh.NewCommitID()},
		{Commit: dotmesh.NewCommitID(), Base: dotmesh.NewCommitID()},
	} {
		for _, chunk := range []int{1 << 10, 5 << 20} {
			data := frame(t, h, payload, chunk)
			got, out, err := unframe(data)
			if err != nil || got != h || !bytes.Equal(out, payload) {
				t.Fatalf("round trip: header %+v, %d bytes, %v", got, len(out), err)
			}
		}
	}
	got, out, err := unframe(frame(t, streamHeader{Commit: dotmesh.NewCommitID()}, nil, 1))
	if err != nil || len(out) != 0 || got.Base != "" {
		t.Fatalf("empty payload: %v", err)
	}
}

func TestFrameDetectsDamage(t *testing.T) {
	payload := make([]byte, 300000)
	rand.Read(payload)
	data := frame(t, streamHeader{Commit: dotmesh.NewCommitID()}, payload, 100000)
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
	huge := bytes.Clone(data)
	copy(huge[headerLen:], []byte{0xff, 0xff, 0xff, 0xff})
	if _, _, err := unframe(huge); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("oversized frame: %v", err)
	}
}
