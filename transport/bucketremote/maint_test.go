package bucketremote_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/bucket/s3test"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

func TestVerifyResultErr(t *testing.T) {
	if err := (bucketremote.VerifyResult{Commits: 3, Blobs: 9}).Err(); err != nil {
		t.Fatalf("no problems: %v", err)
	}
	v := bucketremote.VerifyResult{Problems: []bucketremote.Problem{
		{Object: "data/ab/ab01", Dot: "admin/app", Commit: "c1", Message: "missing"},
		{Object: "records/commit/x.r", Message: "does not decode"},
		{Object: "data/cd/cd02", Dot: "admin/app", Message: "changed"},
		{Object: "data/ef/ef03", Message: "truncated"},
		{Object: "data/ef/ef04", Message: "truncated"},
	}}
	err := v.Err()
	if !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("Err does not wrap ErrCorrupt: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"data/ab/ab01", "commit c1 of admin/app", "records/commit/x.r", "data/cd/cd02", "and 2 more"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Err %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "ef03") || strings.Contains(msg, "\n") {
		t.Errorf("Err %q names more than the first three problems, or is not one line", msg)
	}
}

// TestMaint runs the maintenance and fault tests against a real S3
// server (SeaweedFS, the one TestS3 uses too), each in a prefix of its
// own.
func TestMaint(t *testing.T) {
	srv := s3test.Shared(t)
	for _, tc := range []struct {
		name string
		f    func(*testing.T, *s3test.Server)
	}{
		{"ListAndLog", testListAndLog},
		{"GCKeepAndTags", testGCKeepAndTags},
		{"GCUnfinished", testGCUnfinished},
		{"GCWhilePushing", testGCWhilePushing},
		{"GCRacingPush", testGCRacingPush},
		{"VerifyMissing", testVerifyMissing},
		{"CorruptObject", func(t *testing.T, s *s3test.Server) { testDamagedObject(t, s, false) }},
		{"TruncatedObject", func(t *testing.T, s *s3test.Server) { testDamagedObject(t, s, true) }},
		{"ReadOnlyCredentials", testReadOnlyPush},
		{"ServerKilledMidPush", testServerKilledMidPush},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, srv) })
	}
}

// history commits msgs on dot's branch, each changing two files (one of
// random content) and adding one, and returns the commits.
func (n *mtNode) history(dot dotmesh.DotName, branch string, seed uint64, msgs ...string) []*dotmesh.Commit {
	n.t.Helper()
	var out []*dotmesh.Commit
	for i, m := range msgs {
		out = append(out, n.commit(dot, branch, m, map[string][]byte{
			"shared":       []byte(m),
			"big":          backendtest.RandomBytes(64<<10+i, seed+uint64(i)),
			"db/base/" + m: []byte(strings.Repeat(m, 100)),
		}))
	}
	return out
}

func testListAndLog(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, n, cs := mtStart(t, srv, 1, "one", "two", "three")
	n.tag(mtDot, "v1", string(cs[0].ID))
	if _, err := n.node.CreateBranch(ctx, mtDot, "dev", ""); err != nil {
		t.Fatal(err)
	}
	dev := n.history(mtDot, "dev", 10, "four")
	other := dotmesh.DotName{Namespace: "admin", Name: "another"}
	n.create(other)
	oc := n.history(other, "", 20, "o1")
	r := b.dial(repo.Options{})
	n.push(mtDot, "master", r)
	n.push(mtDot, "dev", r)
	n.push(other, "master", r)

	dots, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dots) != 2 || dots[0].Name != other || dots[1].Name != mtDot {
		t.Fatalf("List: %+v; want %s then %s", dots, other, mtDot)
	}
	if got := dots[0].Branches; len(got) != 1 || got[0].Name != "master" || got[0].Head != oc[0].ID || got[0].Commits != 1 {
		t.Fatalf("List: branches of %s: %+v", other, got)
	}
	app := dots[1]
	if len(app.Branches) != 2 || app.Branches[0].Name != "dev" || app.Branches[1].Name != "master" {
		t.Fatalf("List: branches of %s: %+v; want dev, master", mtDot, app.Branches)
	}
	m := app.Branches[1]
	if m.Head != cs[2].ID || m.Commits != 3 || !m.Time.Equal(cs[2].Time) {
		t.Fatalf("List: master %+v; want head %s, 3 commits, time %v", m, cs[2].ID, cs[2].Time)
	}
	// The head's tree: shared "three", big of the third commit, three
	// db files.
	want := int64(len("three") + 64<<10 + 2 + 3*100 + 3*100 + 5*100)
	if m.Bytes != want {
		t.Errorf("List: master's head holds %d bytes; want %d", m.Bytes, want)
	}
	if d := app.Branches[0]; d.Head != dev[0].ID || d.Commits != 4 {
		t.Errorf("List: dev %+v; want head %s and 4 commits", d, dev[0].ID)
	}
	if len(app.Tags) != 1 || app.Tags[0].Name != "v1" || app.Tags[0].Commit != cs[0].ID {
		t.Errorf("List: tags %+v; want v1 at %s", app.Tags, cs[0].ID)
	}

	for ref, want := range map[string][]dotmesh.CommitID{
		"master":                              {cs[2].ID, cs[1].ID, cs[0].ID},
		"HEAD":                                {cs[2].ID, cs[1].ID, cs[0].ID},
		"master^":                             {cs[1].ID, cs[0].ID},
		"dev~2":                               {cs[1].ID, cs[0].ID},
		"dev":                                 {dev[0].ID, cs[2].ID, cs[1].ID, cs[0].ID},
		"v1":                                  {cs[0].ID},
		string(cs[1].ID[:8]):                  {cs[1].ID, cs[0].ID},
		string(cs[2].ID) + "~1":               {cs[1].ID, cs[0].ID},
		strings.ToUpper(string(cs[1].ID[:6])): {cs[1].ID, cs[0].ID},
	} {
		got, err := r.Log(ctx, mtDot, ref)
		if err != nil {
			t.Errorf("Log %s: %v", ref, err)
			continue
		}
		if !slices.Equal(bucketremote.CommitIDs(got), want) {
			t.Errorf("Log %s: %v; want %v", ref, bucketremote.CommitIDs(got), want)
		}
	}
	got, err := r.Log(ctx, mtDot, "master")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Message != "three" || got[0].Author != "maint test" || !got[0].Time.Equal(cs[2].Time) {
		t.Errorf("Log: head commit %+v; want the node's %+v", got[0], cs[2])
	}
	for ref, want := range map[string]string{
		"nosuch":   "nosuch",
		"master~3": "goes back 3",
		"beef0123": "beef0123",
	} {
		_, err := r.Log(ctx, mtDot, ref)
		if !errors.Is(err, dotmesh.ErrNotFound) || !strings.Contains(err.Error(), want) {
			t.Errorf("Log %s: %v; want ErrNotFound naming %q", ref, err, want)
		}
	}
	if _, err := r.Log(ctx, mtDot, "a b"); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Errorf("Log of a malformed ref: %v; want ErrInvalidName", err)
	}
	nodot := dotmesh.DotName{Namespace: "admin", Name: "nodot"}
	if _, err := r.Log(ctx, nodot, "master"); !errors.Is(err, dotmesh.ErrNotFound) || !strings.Contains(err.Error(), "nodot") {
		t.Errorf("Log of a dot the bucket lacks: %v; want ErrNotFound naming it", err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GC(ctx, bucketremote.GCOptions{Keep: 1}); !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("GC on a closed Remote: %v; want ErrInvalidArgument saying so", err)
	}
}

// mtDataBlobs is the blob objects of the bucket.
func (b *mtBucket) packs() []string { return b.objectsUnder("packs/") }

func mustVerify(t *testing.T, r *bucketremote.Remote) bucketremote.VerifyResult {
	t.Helper()
	res, err := r.Verify(context.Background(), bucketremote.VerifyOptions{ReadData: true})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("Verify found problems: %v", err)
	}
	return res
}

func testGCKeepAndTags(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, n, cs := mtStart(t, srv, 100, "c1", "c2", "c3", "c4", "c5")
	n.tag(mtDot, "release", string(cs[1].ID))
	b.push(n)
	r := b.dial(repo.Options{})
	before := mustVerify(t, r)

	if _, err := r.GC(ctx, bucketremote.GCOptions{Keep: -1}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("GC with Keep -1: %v; want ErrInvalidArgument", err)
	}
	// Keep 0 keeps every commit and finds no garbage.
	res, err := r.GC(ctx, bucketremote.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res != (bucketremote.GCResult{}) {
		t.Fatalf("GC keeping all commits of a bucket without garbage: %+v", res)
	}

	objects := b.objects()
	dry, err := r.GC(ctx, bucketremote.GCOptions{Keep: 2, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	// c4 and c5 stay as the newest, c2 as tagged; c1 and c3 go, and
	// their versions of big and shared, and their trees, with them.
	if dry.Commits != 2 || dry.Blobs < 6 || dry.Bytes < 2*(64<<10) || dry.Unfinished != 0 {
		t.Fatalf("GC dry run: %+v; want 2 commits and their blobs", dry)
	}
	if after := b.objects(); !maps.Equal(objects, after) {
		t.Fatalf("GC dry run changed the bucket")
	}

	res, err = r.GC(ctx, bucketremote.GCOptions{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res != dry {
		t.Errorf("GC removed %+v; its dry run said %+v", res, dry)
	}
	log, err := r.Log(ctx, mtDot, "master")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bucketremote.CommitIDs(log), []dotmesh.CommitID{cs[4].ID, cs[3].ID}) {
		t.Fatalf("Log after GC: %v; want c5, c4", bucketremote.CommitIDs(log))
	}
	if !log[1].Pruned || log[1].Parent != cs[2].ID {
		t.Errorf("the oldest kept commit is not marked where history starts: %+v", log[1])
	}
	if log, err := r.Log(ctx, mtDot, "release"); err != nil || !slices.Equal(bucketremote.CommitIDs(log), []dotmesh.CommitID{cs[1].ID}) {
		t.Errorf("Log of the tag after GC: %v, %v; want c2 alone", log, err)
	}
	after := mustVerify(t, r)
	if after.Commits != before.Commits-2 || after.Blobs != before.Blobs-res.Blobs {
		t.Errorf("Verify after GC counts %d commits, %d blobs; before %d, %d; GC removed %+v", after.Commits, after.Blobs, before.Commits, before.Blobs, res)
	}
	n.checkClone(r, "after GC")
	// A second GC finds nothing more; refs were compacted.
	again, err := r.GC(ctx, bucketremote.GCOptions{Keep: 2})
	if err != nil || again != (bucketremote.GCResult{}) {
		t.Errorf("a second GC: %+v, %v; want nothing", again, err)
	}
	// The node pushes on from its full history: the bucket takes c6.
	c6 := n.history(mtDot, "", 200, "c6")
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r = b.dial(repo.Options{})
	n.push(mtDot, "master", r)
	if log, err := r.Log(ctx, mtDot, "master"); err != nil || !slices.Equal(bucketremote.CommitIDs(log), []dotmesh.CommitID{c6[0].ID, cs[4].ID, cs[3].ID}) {
		t.Errorf("Log after a push following GC: %v, %v", bucketremote.CommitIDs(log), err)
	}
}

// testGCUnfinished: commits a push sent but never finished stay while
// the push might still be finishing (the lock expiry), then go with
// their blobs.
func testGCUnfinished(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, n, cs := mtStart(t, srv, 300, "one")
	r := b.dial(repo.Options{})
	n.push(mtDot, "master", r)
	two := n.history(mtDot, "", 301, "two")[0]
	// Send two's data without Finish, as a push killed before its end.
	var stream strings.Builder
	if err := n.node.TransferPeer().Send(ctx, mtDot, two.ID, nil, dotmesh.FormatNeutral, &stream); err != nil {
		t.Fatal(err)
	}
	if err := r.SendCommit(ctx, mtDot, "master", *two, nil, dotmesh.FormatNeutral, strings.NewReader(stream.String())); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	objects := b.objects()
	r = b.dial(repo.Options{})
	res, err := r.GC(ctx, bucketremote.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res != (bucketremote.GCResult{}) || !maps.Equal(objects, onlyData(b.objects(), objects)) {
		t.Fatalf("GC right after an unfinished push removed %+v", res)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	const expiry = time.Hour
	later := func() time.Time { return time.Now().Add(expiry + time.Minute) }
	r = b.dial(repo.Options{LockStaleAfter: expiry, Now: later})
	dry, err := r.GC(ctx, bucketremote.GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err = r.GC(ctx, bucketremote.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Unfinished != 1 || res.Commits != 0 || res.Blobs < 1 || res != dry {
		t.Fatalf("GC after the lock expiry: %+v (dry run %+v); want the unfinished commit and its own blobs", res, dry)
	}
	mustVerify(t, r)
	if log, err := r.Log(ctx, mtDot, "master"); err != nil || !slices.Equal(bucketremote.CommitIDs(log), []dotmesh.CommitID{cs[0].ID}) {
		t.Fatalf("Log after GC: %v, %v", log, err)
	}
	// The push run again sends two anew.
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r = b.dial(repo.Options{})
	if res := n.push(mtDot, "master", r); res.Commits != 1 {
		t.Errorf("the push after GC sent %d commits; want 1", res.Commits)
	}
	n.checkClone(r, "after GC removed an unfinished push and the push ran again")
}

// onlyData is got without what is not in want outside data/, records/
// and refs/ (locks come and go).
func onlyData(got, want map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range got {
		if strings.HasPrefix(k, "locks/") {
			if _, ok := want[k]; !ok {
				continue
			}
		}
		out[k] = v
	}
	for k := range want {
		if strings.HasPrefix(k, "locks/") {
			if _, ok := got[k]; !ok {
				out[k] = want[k]
			}
		}
	}
	return out
}

// testGCWhilePushing: a push holds its shared lock from its first write,
// so a GC meanwhile fails at once naming it, and deletes nothing.
func testGCWhilePushing(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, n, _ := mtStart(t, srv, 400, "one", "two")
	pusher := b.dial(repo.Options{})
	gc := b.dial(repo.Options{})
	inPush := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		first := true
		_, err := n.node.Push(ctx, mtDot, "master", pusher, dotmesh.TransferOptions{Progress: func(p dotmesh.Progress) {
			if first && p.Bytes > 0 {
				first = false
				close(inPush)
				<-release
			}
		}})
		done <- err
	}()
	select {
	case <-inPush:
	case err := <-done:
		t.Fatalf("the push ended before it sent data: %v", err)
	}
	objects := b.objects()
	_, err := gc.GC(ctx, bucketremote.GCOptions{Keep: 1})
	var le *repo.LockedError
	if !errors.As(err, &le) || !strings.Contains(le.Holder, "shared lock") {
		t.Errorf("GC during a push: %v; want a LockedError naming the push's shared lock", err)
	}
	// The push's uploads in flight may add objects; none may go.
	after := b.objects()
	for name, size := range objects {
		if got, ok := after[name]; !ok || got != size {
			t.Errorf("a refused GC removed or changed %s", name)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := pusher.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := gc.GC(ctx, bucketremote.GCOptions{Keep: 1}); err != nil {
		t.Fatalf("GC after the push: %v", err)
	}
	n.checkClone(gc, "after a GC refused during a push, then run")
}

// testGCRacingPush: GCs run over and over, from another Remote, while
// pushes of new commits run; whatever interleaving, a clone after both
// is byte-identical and the bucket verifies clean.
func testGCRacingPush(t *testing.T, srv *s3test.Server) {
	ctx := context.Background()
	b, n, _ := mtStart(t, srv, 500, "base")
	b.push(n)

	stop := make(chan struct{})
	gcDone := make(chan error, 1)
	var ran, refused, rerun int
	go func() {
		gc := b.dial(repo.Options{})
		for {
			select {
			case <-stop:
				gcDone <- nil
				return
			default:
			}
			_, err := gc.GC(ctx, bucketremote.GCOptions{Keep: 1})
			var le *repo.LockedError
			switch {
			case err == nil:
				ran++
			case errors.As(err, &le):
				refused++
			default:
				gcDone <- err
				return
			}
			// GC back to back would starve the pushes (each takes the
			// exclusive lock again at once); leave a window, as a
			// schedule would.
			time.Sleep(time.Duration(10+ran%4*10) * time.Millisecond)
		}
	}()
	for i := range 4 {
		// Shared content with the pruned history, new content of its own.
		n.commit(mtDot, "master", fmt.Sprintf("round %d", i), map[string][]byte{
			"big":                 backendtest.RandomBytes(64<<10, 500), // as in "base", which GC drops
			fmt.Sprintf("r%d", i): backendtest.RandomBytes(256<<10, uint64(510+i)),
		})
		var err error
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
			// A push that finds GC's exclusive lock is refused at once.
			// One whose State came before a whole GC ran may find the
			// history it read cut short at Finish (its Remote cached the
			// records before GC marked where history starts) and asks
			// to be run again. Either is run again as a user would,
			// with a fresh Remote.
			pr := b.dial(repo.Options{})
			_, err = n.node.Push(ctx, mtDot, "master", pr, dotmesh.TransferOptions{})
			if cerr := pr.Close(ctx); cerr != nil {
				t.Fatal(cerr)
			}
			if errors.Is(err, dotmesh.ErrNotFound) && strings.Contains(err.Error(), "run the transfer again") {
				rerun++
				continue
			}
			if err == nil || !errors.Is(err, dotmesh.ErrInUse) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	close(stop)
	if err := <-gcDone; err != nil {
		t.Fatalf("GC racing pushes: %v", err)
	}
	t.Logf("GC ran %d times, refused %d times; pushes asked to be run again %d times", ran, refused, rerun)
	r := b.dial(repo.Options{})
	mustVerify(t, r)
	n.checkClone(r, "after pushes racing GCs")
}
