package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// randomText returns n bytes that share no chunk with anything else.
func randomText(t *testing.T, n int) string {
	b := make([]byte, n/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestGCKeepAndVerify: dm gc --keep drops old commits and their chunks
// (dry run first), the kept ones still restore, and dm verify finds a
// damaged chunk and names the commit that uses it.
func TestGCKeepAndVerify(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	e.ok("switch", "app")
	db := e.path("app.db")
	var contents []string
	for i := 0; i < 4; i++ {
		c := randomText(t, 400<<10)
		contents = append(contents, c)
		writeFile(t, filepath.Join(db, "data"), c)
		e.ok("commit", "-m", "c"+string(rune('1'+i)))
	}
	log := e.log("app")
	if len(log) != 4 {
		t.Fatalf("log has %d commits", len(log))
	}

	var dry dotmesh.GCResult
	e.jsonOut(&dry, "gc", "app", "--keep", "2", "--dry-run")
	if !dry.DryRun || len(dry.Removed) != 2 || dry.Stats.BytesRemoved < 400<<10 {
		t.Fatalf("dry run: %+v", dry)
	}
	if n := len(e.log("app")); n != 4 {
		t.Fatalf("dry run removed commits: log has %d", n)
	}
	out := e.ok("gc", "app", "--keep", "2")
	if !strings.Contains(out, "removed 2 commits") || !strings.Contains(out, "freed") {
		t.Fatalf("dm gc: %q", out)
	}
	kept := e.log("app")
	if len(kept) != 2 || kept[0].ID != log[0].ID || kept[1].ID != log[1].ID {
		t.Fatalf("after gc --keep 2 the log is %+v", kept)
	}
	// Nothing left to free: a second gc frees nothing.
	if out := e.ok("gc", "-H"); strings.TrimSpace(out) != "0\t0\t0" {
		t.Fatalf("second gc: %q", out)
	}
	// The oldest kept commit still restores; older refs are gone.
	e.ok("reset", "--hard", "HEAD^")
	if b, _ := os.ReadFile(filepath.Join(db, "data")); string(b) != contents[2] {
		t.Fatal("reset to the oldest kept commit restored the wrong content")
	}
	e.fails("not found", "reset", "--hard", string(log[2].ID))

	e.ok("gc") // reset dropped the head; now only the kept commit's chunks remain
	e.ok("verify")
	// Damage the largest pack in its middle: the 400 KiB chunk of the kept
	// commit.
	var biggest string
	var size int64
	filepath.Walk(e.data, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && strings.HasSuffix(p, ".pack") && info.Size() > size {
			biggest, size = p, info.Size()
		}
		return nil
	})
	if biggest == "" {
		t.Fatal("no stored objects found under the data directory")
	}
	f, err := os.OpenFile(biggest, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	f.ReadAt(buf, size/2)
	buf[0] ^= 0xff
	f.WriteAt(buf, size/2)
	f.Close()
	r := e.dm("verify")
	if r.code == 0 || !strings.Contains(r.out, "damaged chunk ") || !strings.Contains(r.out, string(log[1].ID)) {
		t.Fatalf("dm verify after damage: %v", r)
	}
}
