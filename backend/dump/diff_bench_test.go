package dump

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// BenchmarkNodeDiffStat is the server side of `dm diff --stat` between
// two commits of a files-backend tree with 1% of its files changed: the
// two manifests compared, nothing read (the bench's diff section times
// the whole command). Profile with -cpuprofile.
func BenchmarkNodeDiffStat(b *testing.B) {
	ctx := context.Background()
	st, err := bboltstore.Open(filepath.Join(b.TempDir(), "r.db"), bboltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{openTest(b)}})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	if _, err := n.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		b.Fatal(err)
	}
	dir, err := n.Path(ctx, dotmesh.VolumeName{Dot: app, Subdot: "files"})
	if err != nil {
		b.Fatal(err)
	}
	const files, size = 2000, 16 << 10
	for i := 0; i < files; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%20))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		writeFile(b, filepath.Join(sub, fmt.Sprintf("f%04d", i)), randomBytes(int64(i), size), 0o644)
	}
	c1, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one"})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < files; i += 100 {
		flipByte(b, filepath.Join(dir, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%04d", i)), 100)
	}
	c2, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "1% changed"})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := n.Changes().Diff(ctx, app, dotmesh.DiffOptions{From: string(c1.ID), To: string(c2.ID), Rows: true})
		if err != nil {
			b.Fatal(err)
		}
		if d.Stat.Modified != files/100 {
			b.Fatalf("%d files modified, want %d: %+v", d.Stat.Modified, files/100, d.Stat)
		}
	}
}
