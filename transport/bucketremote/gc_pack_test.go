package bucketremote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestGCRefusesDamagedIndex: an index object that does not open stops
// GC before it deletes anything (it could not know what packs hold).
func TestGCRefusesDamagedIndex(t *testing.T) {
	ctx := context.Background()
	f := newLayoutFixture(t)
	// The index object of the oldest commit, which GC drops (so no
	// kept tree is read from the packs it names).
	first := f.line(layoutDot, "", "c", 1)
	var index string
	if err := f.st.List(ctx, "index/", func(oi bucket.ObjectInfo) error { index = oi.Name; return nil }); err != nil || index == "" {
		t.Fatalf("no index object: %v", err)
	}
	more := f.line(layoutDot, first[0].Commit.ID, "d", 2)
	f.branch(layoutDot, "master", more[1].Commit.ID)
	rc, err := f.st.Get(ctx, index, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	b[len(b)/2] ^= 1
	if err := f.st.Put(ctx, index, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	before := f.objects()
	_, err = f.r.GC(ctx, GCOptions{Keep: 1})
	if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "deleted nothing") || !strings.Contains(err.Error(), index) {
		t.Fatalf("GC with a damaged index object: %v", err)
	}
	if !maps.Equal(before, f.objects()) {
		t.Fatal("a refused GC changed the bucket")
	}
}
