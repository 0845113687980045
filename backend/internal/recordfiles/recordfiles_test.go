package recordfiles

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestSyncBehind: records kept by a Dir that writes and syncs behind
// read back at once, replace and remove as New's do, the sync runs after
// the delay, and Close writes and syncs what came after a first Close.
func TestSyncBehind(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := NewSyncBehind(dir, 20*time.Millisecond, nil)
	dot := dotmesh.NewDotID()
	if err := d.KeepRecords(ctx, dot, map[string][]byte{"dot": []byte("d"), "branch.master": []byte("b1")}); err != nil {
		t.Fatal(err)
	}
	if err := d.KeepRecords(ctx, dot, map[string][]byte{"branch.master": []byte("b2"), "commit.x": []byte("c")}); err != nil {
		t.Fatal(err)
	}
	d.flush()
	d.mu.Lock()
	pending := d.pending
	d.mu.Unlock()
	if !pending {
		t.Fatal("nothing pending right after a write")
	}
	recs, err := d.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := recs[dot]
	if string(got["dot"]) != "d" || string(got["branch.master"]) != "b2" || string(got["commit.x"]) != "c" || len(got) != 3 {
		t.Fatalf("records %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		d.mu.Lock()
		pending = d.pending
		d.mu.Unlock()
		if !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background sync did not run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := d.KeepRecords(ctx, dot, map[string][]byte{"commit.x": nil}); err != nil {
		t.Fatal(err)
	}
	recs, err = d.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := recs[dot]["commit.x"]; ok {
		t.Fatal("removed record still read")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.KeepRecords(ctx, dot, map[string][]byte{"commit.z": []byte("z")}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil { // writes and syncs what came after the first Close
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, string(dot), "commit.z")); err != nil || string(b) != "z" {
		t.Fatalf("record written by Close: %q, %v", b, err)
	}
}

// TestBehindKeepsOrder: records queued for several dots, one updated
// again before the writer took it, are all on disk with their latest
// values once Records returns, and the caller's bytes are not kept.
func TestBehindKeepsOrder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := NewSyncBehind(dir, time.Hour, nil)
	a, b := dotmesh.NewDotID(), dotmesh.NewDotID()
	val := []byte("b1")
	for i, step := range []struct {
		dot  dotmesh.DotID
		recs map[string][]byte
	}{
		{a, map[string][]byte{"dot": []byte("a"), "branch.master": val}},
		{b, map[string][]byte{"dot": []byte("b"), "commit.1": []byte("c1")}},
		{a, map[string][]byte{"branch.master": []byte("b2"), "commit.2": []byte("c2")}},
		{b, map[string][]byte{"commit.1": nil}},
	} {
		if err := d.KeepRecords(ctx, step.dot, step.recs); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	copy(val, "xx")
	recs, err := d.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[a]; len(got) != 3 || string(got["branch.master"]) != "b2" || string(got["commit.2"]) != "c2" || string(got["dot"]) != "a" {
		t.Errorf("dot a: %q", got)
	}
	if got := recs[b]; len(got) != 1 || string(got["dot"]) != "b" {
		t.Errorf("dot b: %q", got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}
