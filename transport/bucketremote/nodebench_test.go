package bucketremote_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// The node's side of a bucket transfer, without a server in between: a
// 128 MiB files dot (1024 files of 64 KiB and 8 of 8 MiB, random) pushed
// to a bucket on local disk, and cloned from it onto a fresh node.

func benchNode(b testing.TB) *dotmesh.Node {
	b.Helper()
	dir := b.TempDir()
	st, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	be, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{})
	if err != nil {
		b.Fatal(err)
	}
	n, err := dotmesh.NewNode(context.Background(), dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{be}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

func benchBucket(b testing.TB) *bucketremote.Remote {
	b.Helper()
	ctx := context.Background()
	st, err := bucket.OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	rp, err := repo.Init(ctx, st, repo.InitOptions{Password: password, KDF: cheapKDF}, repo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := bucketremote.New(rp, bucketremote.Config{})
	b.Cleanup(func() { r.Close(ctx) })
	return r
}

func benchDot(b testing.TB) *dotmesh.Node {
	b.Helper()
	ctx := context.Background()
	n := benchNode(b)
	if _, err := n.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		b.Fatal(err)
	}
	root, err := n.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: dotmesh.RootSubdot})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	write := func(p string, size int) {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1024 {
		write(filepath.Join(root, fmt.Sprintf("d%02d", i%32), fmt.Sprintf("f%04d", i)), 64<<10)
	}
	for i := range 8 {
		write(filepath.Join(root, "big", fmt.Sprintf("b%d", i)), 8<<20)
	}
	if _, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "bench", Author: "bench"}); err != nil {
		b.Fatal(err)
	}
	return n
}

func BenchmarkNodePushToBucket(b *testing.B) {
	ctx := context.Background()
	n := benchDot(b)
	b.SetBytes(128 << 20)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		rem := benchBucket(b)
		b.StartTimer()
		if _, err := n.Push(ctx, app, "", rem, dotmesh.TransferOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNodeCloneFromBucket(b *testing.B) {
	ctx := context.Background()
	rem := benchBucket(b)
	if _, err := benchDot(b).Push(ctx, app, "", rem, dotmesh.TransferOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(128 << 20)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		n := benchNode(b)
		b.StartTimer()
		if _, err := n.Clone(ctx, app, "", rem, dotmesh.TransferOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
