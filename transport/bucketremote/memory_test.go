//go:build !race

// The race detector multiplies memory use: the bound is measured without it.

package bucketremote_test

import (
	"bufio"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// peakRSS is the process's peak resident set since resetPeakRSS, in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux).
func resetPeakRSS(t *testing.T) {
	t.Helper()
	require.NoError(t, os.WriteFile("/proc/self/clear_refs", []byte("5"), 0))
}

// writeRandomFile writes size random bytes without holding them.
func writeRandomFile(t *testing.T, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	require.NoError(t, err)
	rng := rand.New(rand.NewSource(9))
	buf := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(buf)) {
		rng.Read(buf)
		_, err := f.Write(buf)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
}

// bigDotNode is a node with a commit of size random bytes in dot app,
// and the process's RSS from which the peak is measured next.
func bigDotNode(t *testing.T, size int64) (*node, int64) {
	t.Helper()
	a := newNode(t)
	a.create(app)
	writeRandomFile(t, filepath.Join(a.root(app, ""), "big"), size)
	a.commit(app, "big")
	debug.FreeOSMemory()
	resetPeakRSS(t)
	return a, peakRSS(t)
}

// A push's memory is bounded by its pipeline (a few chunks per worker),
// not by the dot's size: the whole process stays well under 200 MB
// while pushing a dot several times larger.
func TestPushMemoryBounded(t *testing.T) {
	ctx := context.Background()
	const size = 512 << 20
	b := newBucket(t)
	a, start := bigDotNode(t, size)
	_, err := a.node.Push(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
	require.NoError(t, err)
	peak := peakRSS(t)
	t.Logf("pushing %d MiB: RSS %d MiB before, peak %d MiB", size>>20, start>>20, peak>>20)
	require.Less(t, peak, int64(200<<20))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap sys %d MiB, total alloc %d MiB, gc %d", ms.HeapSys>>20, ms.TotalAlloc>>20, ms.NumGC)
}

// The same push with the default KDF (Argon2id, 19 MiB) run inside the
// measured window, as a node does when it opens a bucket for a push: the
// KDF's memory is handed back before the push, so it does not add to the
// push's peak; and opening the repository again with the same password
// derives nothing (the derived key is cached in the process).
func TestPushMemoryDefaultKDF(t *testing.T) {
	ctx := context.Background()
	const size = 512 << 20
	dir := t.TempDir()
	st, err := bucket.OpenDir(dir)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	a, start := bigDotNode(t, size)
	t0 := time.Now()
	rp, err := repo.Init(ctx, st, repo.InitOptions{Password: password}, repo.Options{})
	require.NoError(t, err)
	require.NoError(t, rp.Close())
	derive := time.Since(t0)
	afterKDF := peakRSS(t)
	resetPeakRSS(t)
	t0 = time.Now()
	rp, err = repo.Open(ctx, st, password, repo.Options{})
	require.NoError(t, err)
	open := time.Since(t0)
	r := bucketremote.New(rp, bucketremote.Config{})
	t.Cleanup(func() { r.Close(ctx) })
	_, err = a.node.Push(ctx, app, "", r, dotmesh.TransferOptions{})
	require.NoError(t, err)
	peak := peakRSS(t)
	t.Logf("Argon2id default: %s, RSS %d MiB before, peak %d MiB with it; open again: %s; push of %d MiB after them: peak %d MiB",
		derive.Round(time.Millisecond), start>>20, afterKDF>>20, open.Round(time.Microsecond), size>>20, peak>>20)
	require.Less(t, peak, int64(200<<20))
	require.Less(t, open, derive/10, "opening again derived the key again")
}
