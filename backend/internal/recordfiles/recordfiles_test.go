package recordfiles

import (
	"context"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestSyncBehind: records kept by a Dir that syncs behind read back at
// once, replace and remove as New's do, the sync runs after the delay,
// and Close syncs what came after a first Close.
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
	if err := d.Close(); err != nil { // syncs what came after the first Close
		t.Fatal(err)
	}
}
