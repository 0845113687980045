package dump

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

var ctx = context.Background()

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openTest(t testing.TB) *Guarded {
	t.Helper()
	dir := t.TempDir()
	b, err := Open(dir, Options{Logger: testLogger(t), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		makeWritable(dir)
	})
	return b
}

// makeWritable lets TempDir's cleanup remove read-only directories that
// tests restore (only needed when not running as root).
func makeWritable(dir string) {
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}

func newBranch(t testing.TB, b *Guarded) dotmesh.BranchRef {
	t.Helper()
	br := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	if err := b.CreateBranch(ctx, br, nil); err != nil {
		t.Fatal(err)
	}
	return br
}

func commit(t testing.TB, b *Guarded, br dotmesh.BranchRef) (dotmesh.CommitRef, map[string]string) {
	t.Helper()
	c := dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}
	facts, err := b.Commit(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return c, facts
}

func fact(t testing.TB, facts map[string]string, key string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(facts[key], 10, 64)
	if err != nil {
		t.Fatalf("fact %s = %q: %v", key, facts[key], err)
	}
	return v
}

func treeOf(t testing.TB, b *Guarded, br dotmesh.BranchRef) string {
	t.Helper()
	p, err := b.SubdotPath(ctx, br, dotmesh.RootSubdot)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed int64, n int) []byte {
	buf := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(buf)
	return buf
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// waitTick waits until the filesystem clock in dir has moved past every
// timestamp written so far, so that no file written before is "racily
// clean" for the next commit.
func waitTick(t testing.TB, dir string) {
	t.Helper()
	start, err := fsClock(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		now, err := fsClock(dir)
		if err != nil {
			t.Fatal(err)
		}
		if now > start {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("filesystem clock does not advance")
}

// digest describes a tree exactly: type, mode, size, mtime, content hash
// and symlink target of every entry (and owner when root).
func digest(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s mode=%o mtime=%d", rel, st.Mode, st.Mtim.Nano())
		if os.Geteuid() == 0 {
			line += fmt.Sprintf(" owner=%d:%d", st.Uid, st.Gid)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			line += fmt.Sprintf(" size=%d sha=%s", len(data), hex.EncodeToString(sum[:8]))
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case unix.S_IFDIR:
			// directory mtimes are compared too
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func sameTree(t testing.TB, want, got []string) {
	t.Helper()
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("trees differ:\nwant:\n  %s\ngot:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
	}
}

// flipByte damages one byte of path at off, as a bad disk would.
func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	os.Chmod(path, 0o644)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x80
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// usageAt is b's Usage of br against commit c, failing t on an error.
func usageAt(t testing.TB, b *Guarded, br dotmesh.BranchRef, c dotmesh.CommitRef) dotmesh.Usage {
	t.Helper()
	u, err := b.Usage(ctx, br, &c)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
