package api

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestCommitHeaderRoundTrip(t *testing.T) {
	c := dotmesh.Commit{ID: dotmesh.NewCommitID(), Author: "a", Message: "m", Time: time.Unix(5, 0).UTC(), Metadata: map[string]string{"k": "v"}}
	var buf bytes.Buffer
	if err := WriteCommitHeader(&buf, c); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("rest")
	got, err := ReadCommitHeader(&buf)
	if err != nil || got.ID != c.ID || got.Metadata["k"] != "v" || buf.String() != "rest" {
		t.Fatalf("got %+v, %v, rest %q", got, err, buf.String())
	}
	var bad bytes.Buffer
	_ = WriteCommitHeader(&bad, c)
	b := bad.Bytes()
	b[12] ^= 1
	if _, err := ReadCommitHeader(bytes.NewReader(b)); !errors.Is(err, dotmesh.ErrCorrupt) && !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("flipped byte: %v", err)
	}
}

func FuzzReadCommitHeader(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteCommitHeader(&buf, dotmesh.Commit{ID: dotmesh.NewCommitID(), Message: "x"})
	f.Add(buf.Bytes())
	f.Add([]byte("DMC1\x00\x00\x00\x02{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadCommitHeader(bytes.NewReader(data))
		if err == nil {
			if dotmesh.ValidateID("commit", string(c.ID), false) != nil {
				t.Fatalf("accepted an invalid id %q", c.ID)
			}
			var out bytes.Buffer
			if err := WriteCommitHeader(&out, c); err != nil {
				t.Fatal(err)
			}
		}
	})
}
