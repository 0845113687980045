package dump

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// makeMixedTree writes about totalMB MiB of files of mixed sizes: many
// small ones, some medium, a few large; half random, half compressible.
// It returns the number of files.
func makeMixedTree(t testing.TB, root string, totalMB int) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"dotmesh ", "commit ", "branch ", "postgres ", "row ", "value ", "\n", "42 ", "index "}
	fill := func(buf []byte, compressible bool) {
		if !compressible {
			for i := 0; i+8 <= len(buf); i += 8 {
				v := rng.Uint64()
				for j := 0; j < 8; j++ {
					buf[i+j] = byte(v >> (8 * j))
				}
			}
			return
		}
		for i := 0; i < len(buf); {
			i += copy(buf[i:], words[rng.IntN(len(words))])
		}
	}
	total := int64(totalMB) << 20
	var written int64
	files := 0
	for written < total {
		var size int
		switch r := rng.IntN(100); {
		case r < 70:
			size = 1<<10 + rng.IntN(16<<10)
		case r < 97:
			size = 64<<10 + rng.IntN(1<<20)
		default:
			size = 8<<20 + rng.IntN(24<<20)
		}
		if int64(size) > total-written {
			size = int(total - written)
		}
		buf := make([]byte, size)
		fill(buf, files%2 == 0)
		p := filepath.Join(root, fmt.Sprintf("d%02d", files%37), fmt.Sprintf("s%d", files%5), fmt.Sprintf("f%06d", files))
		writeFile(t, p, buf, 0o644)
		written += int64(size)
		files++
	}
	return files
}

// TestPerf measures commit throughput. It runs only with
// DOTMESH_DUMP_PERF_MB set (the tree size in MiB), e.g.
//
//	DOTMESH_DUMP_PERF_MB=200 go test -run TestPerf -v ./backend/dump/
func TestPerf(t *testing.T) {
	mb, _ := strconv.Atoi(os.Getenv("DOTMESH_DUMP_PERF_MB"))
	if mb <= 0 {
		t.Skip("set DOTMESH_DUMP_PERF_MB to run")
	}
	dir := os.Getenv("DOTMESH_DUMP_PERF_DIR") // default: a temp dir
	if dir == "" {
		dir = t.TempDir()
	}
	b, err := Open(filepath.Join(dir, "backend"), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	start := time.Now()
	nfiles := makeMixedTree(t, tree, mb)
	t.Logf("generated %d MiB in %d files in %v", mb, nfiles, time.Since(start))

	run := func(what string) (time.Duration, map[string]string) {
		start := time.Now()
		_, facts := commit(t, b, br)
		d := time.Since(start)
		t.Logf("%-22s %8v  %7.1f MiB/s  read=%s new_chunks=%s new_bytes_stored=%s", what, d.Round(time.Millisecond),
			float64(mb)/d.Seconds(), facts["bytes_read"], facts["new_chunks"], facts["new_bytes_stored"])
		return d, facts
	}
	first, _ := run("first commit")
	again, _ := run("unchanged recommit")
	t.Logf("unchanged recommit took %.2f%% of the first", 100*again.Seconds()/first.Seconds())

	// Change 1% like a database does: 256 KiB runs overwritten in place
	// in random files, as `make bench` does.
	var files []string
	filepath.Walk(tree, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && info.Size() >= 256<<10 {
			files = append(files, p)
		}
		return err
	})
	rng := rand.New(rand.NewPCG(3, 4))
	var changed int64
	for changed < int64(mb)<<20/100 {
		p := files[rng.IntN(len(files))]
		st, _ := os.Stat(p)
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(randomBytes(rng.Int64(), 256<<10), rng.Int64N(st.Size()-256<<10+1))
		f.Close()
		changed += 256 << 10
	}
	_, facts := run("1% changed")
	stored, _ := strconv.ParseInt(facts["new_bytes_stored"], 10, 64)
	t.Logf("1%% change (%d bytes) stored %.2f%% of the tree", changed, 100*float64(stored)/float64(int64(mb)<<20))

	c, _ := commit(t, b, br)
	os.RemoveAll(tree)
	os.Mkdir(tree, 0o755)
	start = time.Now()
	nb := dotmesh.BranchRef{Dot: br.Dot, Branch: "restore"}
	if err := b.CreateBranch(ctx, nb, &c); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	t.Logf("%-22s %8v  %7.1f MiB/s", "restore (CreateBranch)", d.Round(time.Millisecond), float64(mb)/d.Seconds())
	start = time.Now()
	if err := b.Rollback(ctx, nb, c); err != nil {
		t.Fatal(err)
	}
	t.Logf("%-22s %8v", "no-op rollback", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if err := b.Send(ctx, c, nil, discard{}); err != nil {
		t.Fatal(err)
	}
	d = time.Since(start)
	t.Logf("%-22s %8v  %7.1f MiB/s", "send (full)", d.Round(time.Millisecond), float64(mb)/d.Seconds())

	dst, err := Open(filepath.Join(dir, "receiver"), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(b.Send(ctx, c, nil, pw)) }()
	start = time.Now()
	if err := dst.Receive(ctx, c, nil, pr); err != nil {
		t.Fatal(err)
	}
	d = time.Since(start)
	t.Logf("%-22s %8v  %7.1f MiB/s", "send | receive", d.Round(time.Millisecond), float64(mb)/d.Seconds())
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestPerfTree times the first commit of an existing tree, for side by
// side comparisons with other tools on the same data, e.g.
//
//	DOTMESH_DUMP_PERF_TREE=/some/tree go test -run TestPerfTree -v ./backend/dump/
//	restic -r /tmp/repo init && (cd /some/tree && time restic -r /tmp/repo backup .)
//
// The tree is hard-linked into the backend (cp -al), not copied.
func TestPerfTree(t *testing.T) {
	src := os.Getenv("DOTMESH_DUMP_PERF_TREE")
	if src == "" {
		t.Skip("set DOTMESH_DUMP_PERF_TREE to run")
	}
	b := openTest(t)
	br := newBranch(t, b)
	tree := treeOf(t, b, br)
	os.Remove(tree)
	if out, err := exec.Command("cp", "-al", src, tree).CombinedOutput(); err != nil {
		t.Fatalf("cp -al: %v: %s", err, out)
	}
	start := time.Now()
	_, facts := commit(t, b, br)
	t.Logf("first commit: %v, %s bytes in %s files, %s stored", time.Since(start).Round(time.Millisecond),
		facts["bytes"], facts["files"], facts["new_bytes_stored"])
}
