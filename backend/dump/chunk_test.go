package dump

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/internal/cdc"
)

// chunksOf is data cut with params p, as the commit cuts a file with
// fileChunks.
func chunksOf(t testing.TB, data []byte, p cdc.Params) []Chunk {
	t.Helper()
	c := newChunker(bytes.NewReader(data), p)
	var out []Chunk
	buf := make([]byte, 0, p.Max)
	for {
		ch, err := c.Next(buf)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Chunk{Hash: cas.Sum(ch.Data), Size: uint32(ch.Length)})
	}
}

func chunkSizes(t *testing.T, data []byte, p cdc.Params) []int {
	t.Helper()
	var sizes []int
	for _, c := range chunksOf(t, data, p) {
		sizes = append(sizes, int(c.Size))
	}
	return sizes
}

// Chunk boundaries must never change between versions, runs or nodes:
// deduplication across time and across the network depends on it.
func TestChunkBoundariesAreStable(t *testing.T) {
	data := randomBytes(42, 16<<20)
	sizes := chunkSizes(t, data, fileChunks)
	h := sha256.New()
	for _, s := range sizes {
		h.Write([]byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)})
	}
	got := hex.EncodeToString(h.Sum(nil))[:16]
	const want = "3307266c1410ba59"
	if got != want {
		t.Errorf("chunk boundaries changed: %d chunks, fingerprint %s, want %s", len(sizes), got, want)
	}
	for i, s := range sizes {
		if s > fileChunks.Max || (s < fileChunks.Min && i != len(sizes)-1) {
			t.Errorf("chunk %d has %d bytes, outside [%d, %d]", i, s, fileChunks.Min, fileChunks.Max)
		}
	}
	avg := len(data) / len(sizes)
	if avg < 256<<10 || avg > 1<<20 {
		t.Errorf("average chunk %d bytes, expected around 512 KiB", avg)
	}
}

// Inserting bytes near the start only changes the chunks around it.
func TestChunkingResynchronises(t *testing.T) {
	data := randomBytes(7, 16<<20)
	shifted := append(append(append([]byte{}, data[:1000]...), []byte("inserted!")...), data[1000:]...)
	set := func(d []byte) map[string]bool {
		m := map[string]bool{}
		off := 0
		for _, s := range chunkSizes(t, d, fileChunks) {
			sum := sha256.Sum256(d[off : off+s])
			m[string(sum[:])] = true
			off += s
		}
		return m
	}
	a, b := set(data), set(shifted)
	common := 0
	for k := range b {
		if a[k] {
			common++
		}
	}
	if common < len(a)-2 {
		t.Fatalf("only %d of %d chunks survive a 9-byte insertion", common, len(a))
	}
}
