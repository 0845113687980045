package bucketremote_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/bucket/s3test"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// testVerifyMissing: a blob a commit needs, deleted from the bucket, is
// a problem naming the object, the dot and the commit.
func testVerifyMissing(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, n, cs := mtStart(t, srv, 600, "one")
	c := cs[0]
	r := b.dial(repo.Options{})
	n.push(mtDot, "master", r)
	blobs := b.packs()
	gone := blobs[len(blobs)/2]
	if err := b.store().Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	res, err := r.Verify(ctx, verifyAll)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 {
		t.Fatalf("Verify with one blob gone: %+v", res.Problems)
	}
	p := res.Problems[0]
	if p.Object != gone || p.Dot != mtDotFull || p.Commit != string(c.ID) {
		t.Errorf("Verify: %+v; want object %s of commit %s of %s", p, gone, c.ID, mtDot)
	}
	if err := res.Err(); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), gone) {
		t.Errorf("VerifyResult.Err: %v", err)
	}
	// Without reading data the structure check finds it all the same.
	res, err = r.Verify(ctx, bucketremote.VerifyOptions{})
	if err != nil || len(res.Problems) != 1 || res.Problems[0].Object != gone || res.BlobsRead != 0 {
		t.Errorf("Verify without ReadData: %+v, %v", res, err)
	}
	if _, err := r.Verify(ctx, bucketremote.VerifyOptions{ReadData: true, SamplePercent: 101}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("Verify with a sample of 101%%: %v; want ErrInvalidArgument", err)
	}
}

var verifyAll = bucketremote.VerifyOptions{ReadData: true}

// testDamagedObject: a blob changed (one byte) or truncated in the
// bucket is named by Verify, and a clone fails with ErrCorrupt and
// restores nothing.
func testDamagedObject(t *testing.T, srv *s3test.Server, truncate bool) {
	ctx := context.Background()
	b, n, cs := mtStart(t, srv, 700, "one", "two")
	c := cs[1]
	r := b.dial(repo.Options{})
	n.push(mtDot, "master", r)
	clean := mustVerify(t, r)

	st := b.store()
	blobs := b.packs()
	// The biggest pack: it holds files' chunks, which a clone needs.
	sizes := b.objects()
	slices.SortStableFunc(blobs, func(x, y string) int { return int(sizes[y] - sizes[x]) })
	victim := blobs[0]
	rc, err := st.Get(ctx, victim, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if truncate {
		body = body[:len(body)/2]
	} else {
		body[len(body)/3] ^= 0x40
	}
	if err := st.Put(ctx, victim, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}

	res, err := r.Verify(ctx, verifyAll)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || res.Problems[0].Object != victim {
		t.Fatalf("Verify: %+v; want one problem naming %s", res.Problems, victim)
	}
	if p := res.Problems[0]; p.Dot != mtDotFull || p.Commit != string(c.ID) && p.Commit == "" {
		t.Errorf("Verify: %+v does not name the dot and commit needing it", p)
	}
	if res.Blobs != clean.Blobs || res.BlobsRead != clean.Blobs {
		t.Errorf("Verify listed %d and read %d blobs; want all %d", res.Blobs, res.BlobsRead, clean.Blobs)
	}
	if err := res.Err(); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), victim) {
		t.Errorf("VerifyResult.Err: %v", err)
	}

	m := mtNewNode(t)
	_, err = m.node.Clone(ctx, mtDot, "master", r, dotmesh.TransferOptions{})
	if !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("clone of a damaged bucket: %v; want ErrCorrupt", err)
	}
	t.Logf("the clone of a damaged bucket: %v", err)
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("the clone's error is not one line: %q", err)
	}
	if m.hasDot(mtDot) {
		t.Errorf("a failed clone left dot %s on the node", mtDot)
	}
}

// testReadOnlyPush: credentials that may only read fail a push with
// ErrPermissionDenied, and the bucket is unchanged.
func testReadOnlyPush(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, n, _ := mtStart(t, srv, 800, "one")
	b.push(n)
	n.history(mtDot, "", 801, "two")
	before := b.objects()

	ro := b.dialWith(b.config(srv.ReadOnlyConfig()))
	_, err := n.node.Push(ctx, mtDot, "master", ro, dotmesh.TransferOptions{})
	if !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("push with read-only credentials: %v; want ErrPermissionDenied", err)
	}
	t.Logf("the push with read-only credentials: %v", err)
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	ro.Close(ctx)
	if after := b.objects(); !maps.Equal(before, after) {
		t.Fatalf("a refused push changed the bucket")
	}
	// Reading works: List, Log and Verify with read-only credentials.
	ro = b.dialWith(b.config(srv.ReadOnlyConfig()))
	if dots, err := ro.List(ctx); err != nil || len(dots) != 1 {
		t.Errorf("List with read-only credentials: %+v, %v", dots, err)
	}
	mustVerify(t, ro)
	if _, err := ro.GC(ctx, bucketremote.GCOptions{Keep: 1}); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Errorf("GC with read-only credentials: %v; want ErrPermissionDenied", err)
	}
	if after := b.objects(); !maps.Equal(before, after) {
		t.Fatalf("read-only maintenance changed the bucket")
	}
}

// testServerKilledMidPush: the S3 gateway dies while a push uploads; the
// push fails with a clear error, nothing stored is lost or damaged, and
// the push run again after a restart completes.
func testServerKilledMidPush(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, n, _ := mtStart(t, srv, 900, "one")
	b.push(n)
	// A second commit big enough to be cut off: 24 MiB in 12 files.
	files := map[string][]byte{}
	for i := range 12 {
		files["large/"+string(rune('a'+i))] = backendtest.RandomBytes(2<<20, uint64(910+i))
	}
	n.commit(mtDot, "master", "big", files)
	before := b.objects()

	r := b.dial(repo.Options{})
	var once sync.Once
	_, err := n.node.Push(ctx, mtDot, "master", r, dotmesh.TransferOptions{Progress: func(p dotmesh.Progress) {
		if p.Bytes > 4<<20 {
			once.Do(srv.Kill)
		}
	}})
	srv.Kill() // in case the push finished first (it must not)
	if err == nil {
		t.Fatal("a push to a killed S3 server succeeded")
	}
	t.Logf("the push to a killed server: %v", err)
	if !errors.Is(err, dotmesh.ErrUnavailable) || strings.Contains(err.Error(), "\n") {
		t.Errorf("push to a killed S3 server: %q; want one line wrapping ErrUnavailable", err)
	}
	r.Close(ctx)
	srv.Restart(t)

	r = b.dial(repo.Options{})
	after := b.objects()
	for name, size := range before {
		if strings.HasPrefix(name, "locks/") {
			continue
		}
		if got, ok := after[name]; !ok || got != size {
			t.Errorf("object %s (%d bytes) is gone or changed after the kill", name, size)
		}
	}
	mustVerify(t, r)
	log, err := r.Log(ctx, mtDot, "master")
	if err != nil || len(log) != 1 {
		t.Fatalf("Log after the kill: %v, %v; want the first commit only", log, err)
	}
	res, err := n.node.Push(ctx, mtDot, "master", r, dotmesh.TransferOptions{})
	if err != nil {
		t.Fatalf("the push run again: %v", err)
	}
	if res.Commits != 1 {
		t.Errorf("the push run again sent %d commits; want 1", res.Commits)
	}
	r.Close(ctx)
	r = b.dial(repo.Options{})
	mustVerify(t, r)
	n.checkClone(r, "after the kill and the push run again")
}
