package dump

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// smallFiles is the tree BenchmarkSmallFiles commits and restores; the
// bench's small section uses 500,000 (`go run ./bench -only small`).
var smallFiles = flag.Int("small-files", 50_000, "files of BenchmarkSmallFiles")

// writeSmallTree writes n files of 0–4 KiB, 40 to a directory; seed
// varies their contents, every 100th file only when only is set.
func writeSmallTree(tb testing.TB, root string, n int, seed int64, hundredth bool) {
	tb.Helper()
	data := randomBytes(seed, 4<<10)
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", i/40%25), fmt.Sprintf("m%04d", i/1000))
		if i%40 == 0 && !hundredth {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		if hundredth && i%100 != 0 {
			continue
		}
		size := (i * 7919) % (4<<10 + 1)
		b := append([]byte(fmt.Sprint(i)), data[:size]...)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// peakRSS resets this process's peak resident memory (reset true) or
// reads it.
func peakRSS(tb testing.TB, reset bool) int64 {
	tb.Helper()
	if reset {
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			tb.Fatal(err)
		}
		return 0
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkSmallFiles commits a tree of -small-files small files, then
// again after 1% of them changed, reporting each commit's time and this
// process's peak memory during it, then creates a branch from the commit
// (a full restore) and reports its time against cp -a + sync of the tree.
func BenchmarkSmallFiles(b *testing.B) {
	be := openTest(b)
	br := newBranch(b, be)
	tree := treeOf(b, be, br)
	writeSmallTree(b, tree, *smallFiles, 5, false)
	waitTick(b, tree)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		syscall.Sync()
		peakRSS(b, true)
		start := time.Now()
		commit(b, be, br)
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "commit-ms")
		b.ReportMetric(float64(peakRSS(b, false))/1e6, "commit-peak-MB")
		writeSmallTree(b, tree, *smallFiles, int64(6+i), true)
		waitTick(b, tree)
		runtime.GC()
		syscall.Sync()
		peakRSS(b, true)
		start = time.Now()
		c, _ := commit(b, be, br)
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "commit1%-ms")
		b.ReportMetric(float64(peakRSS(b, false))/1e6, "commit1%-peak-MB")
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
		if out, err := exec.Command("cp", "-a", tree, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp -a: %v: %s", err, out)
		}
		syscall.Sync()
		b.ReportMetric(branch.Seconds()/time.Since(start).Seconds(), "branch/cp")
	}
}
