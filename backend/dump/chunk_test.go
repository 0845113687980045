package dump

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
)

func chunkSizes(t *testing.T, data []byte, p chunkParams) []uint {
	t.Helper()
	c := newChunker()
	resetChunker(c, bytes.NewReader(data), p)
	var sizes []uint
	buf := make([]byte, 0, p.max)
	for {
		ch, err := c.Next(buf)
		if err == io.EOF {
			return sizes
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, ch.Length)
	}
}

func TestPolynomialIrreducible(t *testing.T) {
	if !polynomial.Irreducible() || polynomial.Deg() != 53 {
		t.Fatalf("polynomial %v is unusable (degree %d)", polynomial, polynomial.Deg())
	}
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
	const want = "c7f7edff3f837cad"
	if got != want {
		t.Errorf("chunk boundaries changed: %d chunks, fingerprint %s, want %s", len(sizes), got, want)
	}
	for i, s := range sizes {
		if s > fileChunks.max || (s < fileChunks.min && i != len(sizes)-1) {
			t.Errorf("chunk %d has %d bytes, outside [%d, %d]", i, s, fileChunks.min, fileChunks.max)
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
		off := uint(0)
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
