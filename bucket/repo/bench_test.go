package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket/s3test"
	"github.com/dotmesh-io/dotmesh/internal/seal"
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

// BenchmarkPutBlobS3: blobs of 512 KiB (the average file chunk), random,
// sealed and uploaded by 8 writers to SeaweedFS on loopback, then read
// back and verified.
func BenchmarkPutBlobS3(b *testing.B) {
	srv := s3test.Start(b)
	ctx := context.Background()
	r, err := Init(ctx, srv.Open(b, "bench-"+newKeyID()[:8]), InitOptions{Password: []byte("pw"), KDF: cheapKDF}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	const size = 512 << 10
	pool := randomData(size + 4096)
	var next atomic.Int64
	var ids sync.Map
	b.SetBytes(size)
	b.SetParallelism(4) // 4 × GOMAXPROCS writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			data := slices.Clone(pool[:size])
			binary.LittleEndian.PutUint64(data, uint64(next.Add(1))) // distinct blobs
			id, _, err := r.PutBlob(ctx, data)
			if err != nil {
				b.Fatal(err)
			}
			ids.Store(id, true)
		}
	})
	b.StopTimer()
	ids.Range(func(k, _ any) bool {
		if _, err := r.GetBlob(ctx, k.(ID)); err != nil {
			b.Fatal(err)
		}
		return true
	})
}

// BenchmarkDefaultKDF: what a password costs Open (and a wrong one,
// before it fails) per key tried.
func BenchmarkDefaultKDF(b *testing.B) {
	salt := make([]byte, seal.SaltLen)
	for range b.N {
		if _, err := DefaultKDF.Derive([]byte("password"), salt); err != nil {
			b.Fatal(err)
		}
	}
}
