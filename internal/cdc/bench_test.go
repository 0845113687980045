package cdc

import (
	"bytes"
	"io"
	"testing"

	"github.com/restic/chunker"
)

// The benchmarks compare with restic's Rabin chunker, which this package
// replaced, at the dump backend's file chunk sizes on 64 MiB of random
// data: go test -bench . -run '^$' ./internal/cdc/

const benchSize = 64 << 20

func BenchmarkGear(b *testing.B) {
	c := New(nil, fileParams)
	benchChunker(b, func(r io.Reader) { c.Reset(r, fileParams) }, func(buf []byte) error {
		_, err := c.Next(buf)
		return err
	})
}

func BenchmarkRestic(b *testing.B) {
	const pol = chunker.Pol(0x2eb32992146e89) // the dump backend's old polynomial
	c := chunker.NewWithBoundaries(nil, pol, uint(fileParams.Min), uint(fileParams.Max))
	benchChunker(b, func(r io.Reader) {
		c.ResetWithBoundaries(r, pol, uint(fileParams.Min), uint(fileParams.Max))
		c.SetAverageBits(fileParams.AvgBits)
	}, func(buf []byte) error {
		_, err := c.Next(buf)
		return err
	})
}

// benchChunker chunks benchSize random bytes per iteration: reset points
// the chunker at a reader, next cuts one chunk (io.EOF at the end).
func benchChunker(b *testing.B, reset func(io.Reader), next func([]byte) error) {
	data := randomBytes(1, benchSize)
	buf := make([]byte, 0, fileParams.Max)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		reset(bytes.NewReader(data))
		n := 0
		for {
			err := next(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(benchSize)/float64(n), "B/chunk")
	}
}
