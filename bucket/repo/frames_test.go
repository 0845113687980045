package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/dotmesh-io/dotmesh/bucket"
)

// GetBlobsFrames returns each packed blob with the zstd frame it was
// opened from (nil when stored uncompressed), sealed or plain; a blob
// asked twice in one call (opened in place) comes back twice.
func TestGetBlobsFrames(t *testing.T) {
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	forEachCipherStore(t, func(t *testing.T, cipher string, st bucket.Store) {
		ctx := context.Background()
		w := initCipher(t, st, cipher)
		text := textLines(200 << 10)
		blobs := [][]byte{text, randomData(100 << 10)}
		var ids []ID
		for _, b := range blobs {
			id, _, err := w.PutBlob(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		flush(t, w)
		r := w
		if cipher == "" {
			r = openRepo(t, st, "secret one")
		}
		want := []ID{ids[0], ids[1], ids[0]}
		data, frames, err := r.GetBlobsFrames(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		for i, j := range []int{0, 1, 0} {
			if !bytes.Equal(data[i], blobs[j]) {
				t.Fatalf("blob %d differs", i)
			}
		}
		if frames[1] != nil {
			t.Fatal("a frame for the random blob, stored uncompressed")
		}
		for _, i := range []int{0, 2} {
			got, err := dec.DecodeAll(frames[i], nil)
			if err != nil || !bytes.Equal(got, blobs[0]) {
				t.Fatalf("frame %d does not decompress to the blob: %v", i, err)
			}
		}
	})
}

// PutHashedBlobFrame stores a chunk store's zstd frame as it is (the
// same frame comes back), keeps data raw without a frame or with one
// that saves too little, and a frame that does not decompress to data
// stores a blob that reads as corrupt, never as data.
func TestPutHashedBlobFrame(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	forEachCipherStore(t, func(t *testing.T, cipher string, st bucket.Store) {
		ctx := context.Background()
		w := initCipher(t, st, cipher)
		text := textLines(200 << 10)
		plain, random := text, randomData(100<<10)
		frame := enc.EncodeAll(plain, nil) // a level the repository never writes
		other := append(bytes.Clone(plain[:1000]), "changed"...)
		put := func(data, frame []byte) ID {
			id, stored, err := w.PutHashedBlobFrame(ctx, ContentHash(data), data, frame)
			if err != nil || !stored {
				t.Fatalf("PutHashedBlobFrame: stored %v, %v", stored, err)
			}
			return id
		}
		ids := []ID{put(plain, frame), put(random, nil), put(other, enc.EncodeAll(plain[:len(other)], nil))}
		if _, stored, err := w.PutHashedBlobFrame(ctx, ContentHash(plain), plain, frame); err != nil || stored {
			t.Fatalf("PutHashedBlobFrame again: stored %v, %v", stored, err)
		}
		flush(t, w)
		r := w
		if cipher == "" {
			r = openRepo(t, st, "secret one")
		}
		data, frames, err := r.GetBlobsFrames(ctx, ids[:2])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data[0], plain) || !bytes.Equal(frames[0], frame) {
			t.Fatal("the text blob or its frame differs from what was put")
		}
		if !bytes.Equal(data[1], random) || frames[1] != nil {
			t.Fatal("the random blob differs, or has a frame")
		}
		var ce *CorruptError
		if _, err := r.GetBlob(ctx, ids[2]); !errors.As(err, &ce) {
			t.Fatalf("a blob put with another plaintext's frame: %v; want a CorruptError", err)
		}
	})
}

// forEachCipherStore runs fn on every store kind, for a sealed and a
// plain repository.
func forEachCipherStore(t *testing.T, fn func(t *testing.T, cipher string, st bucket.Store)) {
	for _, cipher := range []string{"", "plain"} {
		t.Run("cipher="+cipher, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st bucket.Store) { fn(t, cipher, st) })
		})
	}
}

// textLines is n bytes or a little more of numbered lines: it
// compresses well.
func textLines(n int) []byte {
	var text bytes.Buffer
	for i := 0; text.Len() < n; i++ {
		fmt.Fprintf(&text, "line %d\n", i)
	}
	return text.Bytes()
}
