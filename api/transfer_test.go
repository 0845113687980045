package api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
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

func TestFinishHeaderRoundTrip(t *testing.T) {
	req := dotmesh.FinishRequest{Head: dotmesh.NewCommitID(), OldHead: dotmesh.NewCommitID(), Stash: true,
		Tags: []dotmesh.Tag{{Name: "v1", Commit: dotmesh.NewCommitID()}}}
	v, ok := EncodeFinish(req)
	if !ok {
		t.Fatal("a small finish request does not fit the header")
	}
	got, err := DecodeFinish(v)
	if err != nil || got.Head != req.Head || got.OldHead != req.OldHead || !got.Stash || len(got.Tags) != 1 || got.Tags[0] != req.Tags[0] {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"!!", base64url(`{"head":"x"} {}`), base64url(`{"nope":1}`), base64url(`[`), strings.Repeat("A", MaxFinishHeader+1)} {
		if _, err := DecodeFinish(bad); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("DecodeFinish(%.40q) = %v; want ErrInvalidArgument", bad, err)
		}
	}
	many := dotmesh.FinishRequest{Head: req.Head}
	for i := 0; i < 2000; i++ {
		many.Tags = append(many.Tags, dotmesh.Tag{Name: fmt.Sprintf("tag-%d", i), Commit: req.Head})
	}
	if _, ok := EncodeFinish(many); ok {
		t.Error("a finish request over MaxFinishHeader was said to fit")
	}
}

func base64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func FuzzDecodeFinish(f *testing.F) {
	v, _ := EncodeFinish(dotmesh.FinishRequest{Head: dotmesh.NewCommitID(), Tags: []dotmesh.Tag{{Name: "t", Commit: dotmesh.NewCommitID()}}})
	f.Add(v)
	f.Add(base64url(`{"head":"x","stash":true}`))
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, v string) {
		req, err := DecodeFinish(v)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) {
				t.Fatalf("error of another kind: %v", err)
			}
			return
		}
		// What was accepted encodes again and decodes to the same.
		w, ok := EncodeFinish(*req)
		if !ok {
			return
		}
		again, err := DecodeFinish(w)
		if err != nil || again.Head != req.Head || len(again.Tags) != len(req.Tags) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", req, again, err)
		}
	})
}
