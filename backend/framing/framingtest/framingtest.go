// Package framingtest helps the backends test their framing.Format.
package framingtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/framing"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Frame returns data framed in format f under header h, written in pieces
// of chunk bytes.
func Frame(t testing.TB, f framing.Format, h framing.Header, data []byte, chunk int) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := f.NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		if _, err := fw.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Golden is how a format encodes two reference streams, full and
// incremental: "hello" written in pieces of 3 bytes (hex of the whole
// stream), and 2 MiB + 5 bytes of a fixed pattern written in pieces of
// 300000 bytes (hex of the SHA-256 of the stream).
type Golden struct {
	FullSmall, IncrementalSmall string
	FullBig, IncrementalBig     string
}

// CheckFormat fails t unless f writes the reference streams exactly as
// want says and reads them back: a backend's streams must stay readable
// by nodes running earlier versions.
func CheckFormat(t *testing.T, f framing.Format, want Golden) {
	t.Helper()
	big := make([]byte, 2*framing.MaxFrame+5)
	for i := range big {
		big[i] = byte(i * 7)
	}
	target := dotmesh.CommitID("0123456789abcdef0123456789abcdef")
	base := dotmesh.CommitID("fedcba9876543210fedcba9876543210")
	for _, tc := range []struct {
		h          framing.Header
		small, big string
	}{
		{framing.Header{Target: target}, want.FullSmall, want.FullBig},
		{framing.Header{Target: target, Base: base}, want.IncrementalSmall, want.IncrementalBig},
	} {
		if got := hex.EncodeToString(Frame(t, f, tc.h, []byte("hello"), 3)); got != tc.small {
			t.Errorf("%s %+v: stream of \"hello\" is\n%s\nwant\n%s", f.Name, tc.h, got, tc.small)
		}
		s := Frame(t, f, tc.h, big, 300000)
		if got := fmt.Sprintf("%x", sha256.Sum256(s)); got != tc.big {
			t.Errorf("%s %+v: stream of %d bytes has SHA-256 %s, want %s", f.Name, tc.h, len(big), got, tc.big)
		}
		gh, fr, err := f.NewReader(bytes.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(fr); err != nil || gh != tc.h || !bytes.Equal(got, big) {
			t.Fatalf("%s round trip: header %+v, %d bytes, %v", f.Name, gh, len(got), err)
		}
	}
}
