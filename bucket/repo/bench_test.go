package repo

import (
	"bytes"
	"testing"
)

// Seal and open throughput of a 4 MiB chunk (the largest a dot is cut
// into), random (incompressible: zstd is tried and dropped) and
// compressible:
//
//	go test -run '^$' -bench . ./bucket/repo/
func BenchmarkSeal(b *testing.B) { benchCodec(b, false) }
func BenchmarkOpen(b *testing.B) { benchCodec(b, true) }

func benchCodec(b *testing.B, open bool) {
	const size = 4 << 20
	inputs := map[string][]byte{
		"random":       randomData(size),
		"compressible": bytes.Repeat(randomData(4096)[:1024], size/1024),
	}
	for cn, c := range testCodecs(b) {
		if cn == "" {
			cn = "plain"
		}
		for in, data := range inputs {
			b.Run(cn+"/"+in, func(b *testing.B) {
				sealed := c.seal(kindBlob, "data/aa/x", data, true)
				b.SetBytes(size)
				b.ResetTimer()
				for range b.N {
					if open {
						if _, err := c.open(kindBlob, "data/aa/x", sealed); err != nil {
							b.Fatal(err)
						}
					} else {
						c.seal(kindBlob, "data/aa/x", data, true)
					}
				}
			})
		}
	}
}

// BenchmarkBlobID: the content hash and the keyed name of a 4 MiB chunk.
func BenchmarkBlobID(b *testing.B) {
	data := randomData(4 << 20)
	c := testCodecs(b)[CipherXChaCha20Poly1305]
	b.SetBytes(int64(len(data)))
	for range b.N {
		c.blobID(ContentHash(data))
	}
}
