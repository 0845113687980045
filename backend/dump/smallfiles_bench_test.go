package dump

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// smallBenchFiles is the tree BenchmarkSmallFiles commits and restores:
// the bench's small section uses 500,000 (`go run ./bench -only small`).
const smallBenchFiles = 50_000

// writeSmallTree writes n files of 0–4 KiB, 40 to a directory.
func writeSmallTree(tb testing.TB, root string, n int) {
	tb.Helper()
	data := randomBytes(5, 4<<10)
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i/40%25), fmt.Sprintf("m%04d", i/1000))
		if i%40 == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		size := (i * 7919) % (4<<10 + 1)
		b := append([]byte(fmt.Sprint(i)), data[:size]...)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkSmallFiles commits a tree of small files, then creates a
// branch from the commit (a full restore), and reports the heap's peak
// in use as sampled by the GC.
func BenchmarkSmallFiles(b *testing.B) {
	be := openTest(b)
	br := newBranch(b, be)
	writeSmallTree(b, treeOf(b, be, br), smallBenchFiles)
	waitTick(b, treeOf(b, be, br))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c, _ := commit(b, be, br)
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "commit-ms")
		runtime.GC()
		syscall.Sync() // the restore's syncfs should not pay for the tree's writeback
		start = time.Now()
		nb := dotmesh.BranchRef{Dot: br.Dot, Branch: fmt.Sprint("copy", i)}
		if err := be.CreateBranch(ctx, nb, &c); err != nil {
			b.Fatal(err)
		}
		branch := time.Since(start)
		b.ReportMetric(float64(branch.Milliseconds()), "branch-ms")
		syscall.Sync()
		start = time.Now()
		dst := filepath.Join(b.TempDir(), "copy")
		if out, err := exec.Command("cp", "-a", treeOf(b, be, br), dst).CombinedOutput(); err != nil {
			b.Fatalf("cp -a: %v: %s", err, out)
		}
		syscall.Sync()
		b.ReportMetric(branch.Seconds()/time.Since(start).Seconds(), "branch/cp")
	}
}
