package bucketremote

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// A file whose offered chunks were not all stored (an offer lost, a
// chunk the sender skipped) fails the tree, so no commit names a blob
// the bucket lacks; one offered with the wrong size is cut from the
// stream as any other; an offered list that does not add up to the
// file's size is refused.
func TestOfferedFileMissingChunk(t *testing.T) {
	ctx := context.Background()
	f := newLayoutFixture(t)
	params, err := f.r.chunkParams()
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("the bytes of a file whose chunk was offered in its list but never stored")
	stream := func() *bytes.Buffer {
		var b bytes.Buffer
		w, err := neutral.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		e := neutral.Entry{Kind: neutral.KindFile, Path: "f", Mode: 0o644, MTime: time.Unix(1, 0), Size: int64(len(data))}
		if err := w.Add(e, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return &b
	}
	chunks := []dotmesh.FileChunk{{Hash: repo.ContentHash(data), Size: uint32(len(data))}}

	s := &offerSink{ctx: ctx, r: f.r, files: map[string]offeredFile{}}
	if err := s.PutFile("f", int64(len(data)), chunks); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.storeTree(ctx, params, stream(), nil, s); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("storeTree with an offered chunk never stored: %v; want ErrCorrupt", err)
	}

	// Offered for another size: the stream's bytes are cut and stored.
	s = &offerSink{ctx: ctx, r: f.r, files: map[string]offeredFile{}}
	if err := s.PutFile("f", int64(len(data))+1, []dotmesh.FileChunk{{Size: uint32(len(data)) + 1}}); err != nil {
		t.Fatal(err)
	}
	rec, err := f.r.storeTree(ctx, params, stream(), nil, s)
	if err != nil || rec.Files != 1 || rec.Chunks != 1 {
		t.Fatalf("storeTree with a list for another size: %+v, %v", rec, err)
	}
	if err := f.rp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if has, err := f.rp.HasBlobs(ctx, []repo.ID{f.rp.BlobID(repo.ContentHash(data))}); err != nil || !has[0] {
		t.Fatalf("the file's chunk, cut from the stream: present %v, %v", has, err)
	}

	if err := s.PutFile("g", 10, []dotmesh.FileChunk{{Size: 4}, {Size: 5}}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("PutFile of chunks that do not add up to the size: %v", err)
	}
}
