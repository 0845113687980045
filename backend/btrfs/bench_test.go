//go:build linux && cgo

package btrfs

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Commit, branch and rollback are snapshot ioctls: their cost must not
// depend on how much data the branch holds.
func BenchmarkSnapshots(b *testing.B) {
	for _, size := range []int64{1 << 20, 1 << 30} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			ctx := context.Background()
			be := openShared(b)
			br := newBranch(dotmesh.NewDotID(), "master")
			must(b, be.CreateBranch(ctx, br, nil))
			f, err := os.Create(subdot(b, be, br, "data") + "/blob")
			must(b, err)
			_, err = io.CopyN(f, zeroFree{}, size)
			must(b, err)
			must(b, f.Close())
			c0 := commit(b, be, br)
			b.Run("Commit", func(b *testing.B) {
				for b.Loop() {
					commit(b, be, br)
				}
			})
			b.Run("CreateBranch", func(b *testing.B) {
				for b.Loop() {
					must(b, be.CreateBranch(ctx, newBranch(br.Dot, "b"+string(dotmesh.NewCommitID())[:8]), &c0))
				}
			})
			b.Run("Rollback", func(b *testing.B) {
				for b.Loop() {
					must(b, be.Rollback(ctx, br, c0))
				}
			})
		})
	}
}

// zeroFree yields bytes that are not all zero (zeros could be holes).
type zeroFree struct{}

func (zeroFree) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return len(p), nil
}
