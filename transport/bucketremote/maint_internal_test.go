package bucketremote

// GC, Log and Verify on repositories written record by record in the
// layout of format.go, in a local directory store: histories whose shape
// (unfinished pushes of a given age, damage) a push cannot easily make.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

type layoutFixture struct {
	t   *testing.T
	st  bucket.Store
	rp  *repo.Repo
	r   *Remote
	now time.Time
}

var layoutDot = dotmesh.DotName{Namespace: "admin", Name: "app"}

func newLayoutFixture(t *testing.T) *layoutFixture {
	t.Helper()
	st, err := bucket.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &layoutFixture{t: t, st: st, now: time.Now()}
	opts := repo.Options{Now: func() time.Time { return f.now }, LockStaleAfter: time.Hour}
	rp, err := repo.Init(context.Background(), st, repo.InitOptions{Password: []byte("pw"), KDF: repo.KDFParams{Name: repo.KDFArgon2id, Time: 1, Memory: 1024, Threads: 1}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.Close() })
	f.rp = rp
	f.r = New(rp, Config{Repo: opts})
	return f
}

// commit stores a commit of files (path: content) with parent, written
// at stored, and returns its record.
func (f *layoutFixture) commit(dot dotmesh.DotName, parent dotmesh.CommitID, stored time.Time, files map[string]string) *CommitRecord {
	f.t.Helper()
	ctx := context.Background()
	var tree bytes.Buffer
	enc := NewTreeEncoder(&tree)
	rec := &CommitRecord{Stored: stored}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		data := []byte(files[p])
		if _, _, err := f.rp.PutBlob(ctx, data); err != nil {
			f.t.Fatal(err)
		}
		te := TreeEntry{Entry: neutral.Entry{Kind: neutral.KindFile, Path: p, Mode: 0o644, MTime: stored, Size: int64(len(data))},
			Chunks: []Chunk{{Hash: repo.ContentHash(data), Length: uint32(len(data))}}}
		if err := enc.Add(te); err != nil {
			f.t.Fatal(err)
		}
		rec.Files++
		rec.Bytes += int64(len(data))
		rec.Chunks++
	}
	if err := enc.Close(); err != nil {
		f.t.Fatal(err)
	}
	id, _, err := f.rp.PutBlob(ctx, tree.Bytes())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.rp.Flush(ctx); err != nil {
		f.t.Fatal(err)
	}
	rec.Tree, rec.TreeBytes = []repo.ID{id}, int64(tree.Len())
	rec.Commit = dotmesh.Commit{ID: dotmesh.NewCommitID(), Parent: parent, Author: "fixture", Time: stored, Message: fmt.Sprint(files)}
	if err := f.rp.PutRecord(ctx, KindCommit, CommitName(dot, rec.Commit.ID), EncodeCommitRecord(rec)); err != nil {
		f.t.Fatal(err)
	}
	return rec
}

// line commits n commits on top of parent, each with a file of its own.
func (f *layoutFixture) line(dot dotmesh.DotName, parent dotmesh.CommitID, name string, n int) []*CommitRecord {
	var out []*CommitRecord
	for i := range n {
		rec := f.commit(dot, parent, f.now, map[string]string{
			"shared":                     "shared content",
			fmt.Sprintf("%s%d", name, i): fmt.Sprintf("content of %s %d", name, i),
		})
		out = append(out, rec)
		parent = rec.Commit.ID
	}
	return out
}

// master is a line of n commits of layoutDot, master at its head.
func (f *layoutFixture) master(n int) []*CommitRecord {
	f.t.Helper()
	cs := f.line(layoutDot, "", "c", n)
	f.branch(layoutDot, "master", cs[n-1].Commit.ID)
	return cs
}

func (f *layoutFixture) setRef(name string, body any) {
	f.t.Helper()
	ctx := context.Background()
	st, err := f.rp.GetRef(ctx, name)
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	if _, err := f.rp.SetRef(ctx, name, st.Version, b); err != nil {
		f.t.Fatal(err)
	}
}

func (f *layoutFixture) branch(dot dotmesh.DotName, name string, head dotmesh.CommitID) {
	f.setRef(BranchRefName(dot, name), BranchRef{Version: formatVersion, Head: head, Created: f.now, Updated: f.now})
}

func (f *layoutFixture) tags(dot dotmesh.DotName, tags ...dotmesh.Tag) {
	f.setRef(TagsRefName(dot), TagsRef{Version: formatVersion, Tags: tags})
}

func (f *layoutFixture) objects() map[string]int64 {
	f.t.Helper()
	out := map[string]int64{}
	if err := f.st.List(context.Background(), "", func(oi bucket.ObjectInfo) error {
		if !strings.HasPrefix(oi.Name, "locks/") {
			out[oi.Name] = oi.Size
		}
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *layoutFixture) verify() VerifyResult {
	f.t.Helper()
	res, err := f.r.Verify(context.Background(), VerifyOptions{ReadData: true})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// CommitIDs lists the ids of cs (the external tests use it too).
func CommitIDs(cs []dotmesh.Commit) []dotmesh.CommitID {
	var out []dotmesh.CommitID
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func recIDs(rs ...*CommitRecord) []dotmesh.CommitID {
	var out []dotmesh.CommitID
	for _, r := range rs {
		out = append(out, r.Commit.ID)
	}
	return out
}

// TestGCPlan: Keep, tags, unfinished pushes young and old, histories
// that start where gc cut them, and a dry run that matches.
func TestGCPlan(t *testing.T) {
	ctx := context.Background()
	f := newLayoutFixture(t)
	cs := f.master(5)
	f.tags(layoutDot, dotmesh.Tag{Name: "release", Commit: cs[1].Commit.ID, Created: f.now})
	// Unfinished pushes: one old, one young on top of an old one.
	old := f.now.Add(-2 * time.Hour)
	u1 := f.commit(layoutDot, cs[4].Commit.ID, old, map[string]string{"u1": "unfinished one"})
	u2 := f.commit(layoutDot, cs[4].Commit.ID, old, map[string]string{"u2": "unfinished two"})
	u3 := f.commit(layoutDot, u2.Commit.ID, f.now.Add(-time.Minute), map[string]string{"u3": "unfinished three"})
	// Another dot whose only commits are an old unfinished push.
	other := dotmesh.DotName{Namespace: "bob", Name: "gone"}
	f.commit(other, "", old, map[string]string{"x": "other dot"})
	if res := f.verify(); res.Err() != nil || res.Commits != 9 {
		t.Fatalf("Verify before GC: %+v", res)
	}

	before := f.objects()
	dry, err := f.r.GC(ctx, GCOptions{Keep: 2, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	// c1 and c3 go (c2 is tagged); u1 and the other dot's commit go; u2
	// stays for u3, which is young. Each goes with its file and tree.
	want := GCResult{Commits: 2, Unfinished: 2, Blobs: 8}
	for _, rec := range []*CommitRecord{cs[0], cs[2]} {
		want.Bytes += f.blobSizes(rec)
	}
	want.Bytes += f.blobSizes(u1) + f.blobSizes(f.only(other))
	if dry != want {
		t.Fatalf("GC dry run: %+v; want %+v", dry, want)
	}
	if !maps.Equal(before, f.objects()) {
		t.Fatal("a dry run changed the bucket")
	}
	res, err := f.r.GC(ctx, GCOptions{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res != want {
		t.Fatalf("GC: %+v; want %+v", res, want)
	}
	log, err := f.r.Log(ctx, layoutDot, "master")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(CommitIDs(log), recIDs(cs[4], cs[3])) || !log[1].Pruned || log[0].Pruned {
		t.Fatalf("Log after GC: %+v; want c5, then c4 marked Pruned", log)
	}
	if log, err := f.r.Log(ctx, layoutDot, "release"); err != nil || !slices.Equal(CommitIDs(log), recIDs(cs[1])) || !log[0].Pruned {
		t.Fatalf("Log of the tag after GC: %+v, %v; want c2 alone, Pruned", log, err)
	}
	commits, err := LoadCommits(ctx, f.rp, layoutDot, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(commits)); !slices.Equal(got, slices.Sorted(slices.Values(recIDs(cs[1], cs[3], cs[4], u2, u3)))) {
		t.Fatalf("commits after GC: %v", got)
	}
	if res := f.verify(); res.Err() != nil || res.Commits != 5 {
		t.Fatalf("Verify after GC: %+v, %v", res, res.Err())
	}
	// Nothing more to collect, and Keep 0 keeps everything left.
	for _, keep := range []int{2, 0} {
		if res, err := f.r.GC(ctx, GCOptions{Keep: keep}); err != nil || res != (GCResult{}) {
			t.Fatalf("GC again with Keep %d: %+v, %v", keep, res, err)
		}
	}
	// An hour later u3 is old too: it goes with u2.
	f.now = f.now.Add(time.Hour)
	if res, err := f.r.GC(ctx, GCOptions{}); err != nil || res.Unfinished != 2 || res.Commits != 0 {
		t.Fatalf("GC after the expiry: %+v, %v; want u2 and u3", res, err)
	}
	if res := f.verify(); res.Err() != nil || res.Commits != 3 {
		t.Fatalf("Verify at the end: %+v, %v", res, res.Err())
	}
}

// blobSizes sums the stored sizes of the blobs only rec uses (its tree
// and its file other than "shared").
func (f *layoutFixture) blobSizes(rec *CommitRecord) int64 {
	f.t.Helper()
	objs := map[repo.ID]int64{}
	if err := f.rp.ListBlobs(context.Background(), func(id repo.ID, size int64) error { objs[id] = size; return nil }); err != nil {
		f.t.Fatal(err)
	}
	var n int64
	err := WalkTree(context.Background(), f.rp, rec, 1, func(te TreeEntry) error {
		if te.Path != "shared" {
			for _, c := range te.Chunks {
				n += objs[f.rp.BlobID(c.Hash)]
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return n + objs[rec.Tree[0]]
}

// only is the one commit record of dot.
func (f *layoutFixture) only(dot dotmesh.DotName) *CommitRecord {
	f.t.Helper()
	cs, err := LoadCommits(context.Background(), f.rp, dot, 1, nil)
	if err != nil || len(cs) != 1 {
		f.t.Fatalf("commits of %s: %v, %v", dot, cs, err)
	}
	for _, rec := range cs {
		return rec
	}
	return nil
}

// TestGCRefusesDamage: a branch naming a commit the bucket lacks stops
// GC before it deletes anything (its history would look unfinished).
func TestGCRefusesDamage(t *testing.T) {
	ctx := context.Background()
	f := newLayoutFixture(t)
	cs := f.master(3)
	f.branch(layoutDot, "dev", dotmesh.NewCommitID())
	before := f.objects()
	_, err := f.r.GC(ctx, GCOptions{Keep: 1})
	if !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), "branch dev") || !strings.Contains(err.Error(), "deleted nothing") {
		t.Fatalf("GC with a dangling branch: %v", err)
	}
	if !maps.Equal(before, f.objects()) {
		t.Fatal("a refused GC changed the bucket")
	}
	// A tree blob gone: GC cannot know what the commit uses.
	f.branch(layoutDot, "dev", cs[0].Commit.ID)
	if err := f.rp.DeleteBlob(ctx, cs[2].Tree[0]); err != nil {
		t.Fatal(err)
	}
	before = f.objects()
	if _, err := f.r.GC(ctx, GCOptions{Keep: 1}); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), string(cs[2].Commit.ID)) {
		t.Fatalf("GC with a tree blob gone: %v", err)
	}
	if !maps.Equal(before, f.objects()) {
		t.Fatal("a refused GC changed the bucket")
	}
	if _, err := f.r.GC(ctx, GCOptions{Keep: -1}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("GC with Keep -1: %v", err)
	}
}

// TestGCOnAWritingRemote: a Remote that pushed holds its shared lock
// until Close; GC on it says so rather than naming its own lock as
// another's. A dry run works.
func TestGCOnAWritingRemote(t *testing.T) {
	ctx := context.Background()
	f := newLayoutFixture(t)
	f.master(2)
	if err := f.r.writeLock(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.r.lock.Unlock(ctx)
	if _, err := f.r.GC(ctx, GCOptions{Keep: 1}); !errors.Is(err, dotmesh.ErrInUse) || !strings.Contains(err.Error(), "this Remote") {
		t.Fatalf("GC on a Remote that wrote: %v", err)
	}
	if res, err := f.r.GC(ctx, GCOptions{Keep: 1, DryRun: true}); err != nil || res.Commits != 1 {
		t.Fatalf("GC dry run on a Remote that wrote: %+v, %v", res, err)
	}
	// Another Remote's GC is refused by the lock, naming it.
	other := New(f.rp, Config{})
	var le *repo.LockedError
	if _, err := other.GC(ctx, GCOptions{Keep: 1}); !errors.As(err, &le) {
		t.Fatalf("GC while another Remote holds its write lock: %v", err)
	}
}

// TestVerifyStructure: what a bucket lacks is named with the dot and
// commit that need it.
func TestVerifyStructure(t *testing.T) {
	ctx := context.Background()
	f := newLayoutFixture(t)
	cs := f.master(3)
	dangling := dotmesh.NewCommitID()
	f.tags(layoutDot, dotmesh.Tag{Name: "lost", Commit: dangling, Created: f.now})
	// The record of c2 goes: c3's history breaks.
	if err := f.rp.DeleteRecord(ctx, KindCommit, CommitName(layoutDot, cs[1].Commit.ID)); err != nil {
		t.Fatal(err)
	}
	// c1's own file goes.
	var own repo.ID
	WalkTree(ctx, f.rp, cs[0], 1, func(te TreeEntry) error {
		if te.Path == "c0" {
			own = f.rp.BlobID(te.Chunks[0].Hash)
		}
		return nil
	})
	if err := f.rp.DeleteBlob(ctx, own); err != nil {
		t.Fatal(err)
	}
	// c3's tree is damaged (a byte flipped in its pack).
	tree, off, n, err := f.rp.BlobLocation(ctx, cs[2].Tree[0])
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.st.Get(ctx, tree, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	pack, _ := io.ReadAll(rc)
	rc.Close()
	pack[off+n/2] ^= 1
	if err := f.st.Put(ctx, tree, bytes.NewReader(pack), int64(len(pack))); err != nil {
		t.Fatal(err)
	}
	for _, readData := range []bool{false, true} {
		res, err := f.r.Verify(ctx, VerifyOptions{ReadData: readData})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Problem{}
		for _, p := range res.Problems {
			got[p.Object] = p
		}
		want := map[string]Problem{
			"commit record " + CommitName(layoutDot, dangling):        {Dot: dotPrefix(layoutDot), Commit: string(dangling)},
			"commit record " + CommitName(layoutDot, cs[1].Commit.ID): {Dot: dotPrefix(layoutDot), Commit: string(cs[2].Commit.ID)},
			MissingBlobObject(own):                                    {Dot: dotPrefix(layoutDot), Commit: string(cs[0].Commit.ID)},
			tree:                                                      {Dot: dotPrefix(layoutDot), Commit: string(cs[2].Commit.ID)},
		}
		if len(got) != len(want) {
			t.Errorf("ReadData %v: problems %+v; want %d", readData, res.Problems, len(want))
		}
		for obj, w := range want {
			p, ok := got[obj]
			if !ok || p.Dot != w.Dot || p.Commit != w.Commit || p.Message == "" {
				t.Errorf("ReadData %v: problem of %s: %+v; want %+v", readData, obj, p, w)
			}
		}
		if res.Commits != 2 {
			t.Errorf("Verify counted %d commits; want 2", res.Commits)
		}
		if err := res.Err(); !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Errorf("Err: %v", err)
		}
	}
	if _, err := f.r.Verify(ctx, VerifyOptions{ReadData: true, SamplePercent: -1}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("Verify with a sample of -1%%: %v", err)
	}
}

// TestLogRefs: refs resolve as on a node; errors name what is missing.
func TestLogRefs(t *testing.T) {
	ctx := context.Background()
	f := newLayoutFixture(t)
	cs := f.line(layoutDot, "", "c", 3)
	dev := f.line(layoutDot, cs[1].Commit.ID, "d", 1)
	f.branch(layoutDot, "dev", dev[0].Commit.ID)
	f.tags(layoutDot, dotmesh.Tag{Name: "v1", Commit: cs[0].Commit.ID, Created: f.now})
	// Only dev: HEAD is dev.
	if log, err := f.r.Log(ctx, layoutDot, ""); err != nil || !slices.Equal(CommitIDs(log), recIDs(dev[0], cs[1], cs[0])) {
		t.Fatalf("Log HEAD with dev the only branch: %v, %v", CommitIDs(log), err)
	}
	f.branch(layoutDot, "master", cs[2].Commit.ID)
	for ref, want := range map[string][]*CommitRecord{
		"HEAD":                         {cs[2], cs[1], cs[0]},
		"@^":                           {cs[1], cs[0]},
		"master~2":                     {cs[0]},
		"dev^":                         {cs[1], cs[0]},
		"v1":                           {cs[0]},
		string(dev[0].Commit.ID[:10]):  {dev[0], cs[1], cs[0]},
		string(cs[2].Commit.ID) + "^^": {cs[0]},
	} {
		log, err := f.r.Log(ctx, layoutDot, ref)
		if err != nil || !slices.Equal(CommitIDs(log), recIDs(want...)) {
			t.Errorf("Log %s: %v, %v; want %v", ref, CommitIDs(log), err, recIDs(want...))
		}
	}
	for ref, want := range map[string]string{
		"nosuch":   "nosuch",
		"v1^":      "tag v1 has only 0",
		"0000beef": "no commit 0000beef",
	} {
		if _, err := f.r.Log(ctx, layoutDot, ref); !errors.Is(err, dotmesh.ErrNotFound) || !strings.Contains(err.Error(), want) {
			t.Errorf("Log %s: %v; want ErrNotFound saying %q", ref, err, want)
		}
	}
	if _, err := f.r.Log(ctx, dotmesh.DotName{Namespace: "admin", Name: "nodot"}, "master"); !errors.Is(err, dotmesh.ErrNotFound) || !strings.Contains(err.Error(), "nodot") {
		t.Errorf("Log of a missing dot: %v", err)
	}
	if _, err := f.r.Log(ctx, layoutDot, "x y"); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Errorf("Log of a malformed ref: %v", err)
	}
	if _, err := f.r.Log(ctx, dotmesh.DotName{Name: "a b"}, "master"); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Errorf("Log of a malformed dot name: %v", err)
	}
	// The default namespace is filled in, as on a node.
	if log, err := f.r.Log(ctx, dotmesh.DotName{Name: "app"}, "v1"); err != nil || len(log) != 1 {
		t.Errorf("Log without a namespace: %v, %v", log, err)
	}

	// A prefix two commits share is ambiguous, unless one is HEAD's.
	a, b := ambiguousPair(f, cs[2].Commit.ID)
	prefix := string(a[:6])
	if a[:6] != b[:6] {
		t.Fatal("ambiguousPair")
	}
	if _, err := f.r.Log(ctx, layoutDot, prefix); !errors.Is(err, dotmesh.ErrAmbiguous) {
		t.Errorf("Log of an ambiguous prefix: %v", err)
	}
	f.branch(layoutDot, "master", a)
	if log, err := f.r.Log(ctx, layoutDot, prefix); err != nil || log[0].ID != a {
		t.Errorf("Log of a prefix unique in HEAD's history: %v, %v", log, err)
	}

	dots, err := f.r.List(ctx)
	if err != nil || len(dots) != 1 || len(dots[0].Branches) != 2 || dots[0].Branches[1].Commits != 4 {
		t.Fatalf("List: %+v, %v", dots, err)
	}
}

// ambiguousPair stores two commits on parent whose ids share a prefix
// of six digits.
func ambiguousPair(f *layoutFixture, parent dotmesh.CommitID) (dotmesh.CommitID, dotmesh.CommitID) {
	f.t.Helper()
	ctx := context.Background()
	var ids []dotmesh.CommitID
	base := dotmesh.NewCommitID()
	for i, tail := range []string{"aa", "bb"} {
		rec := f.commit(layoutDot, parent, f.now, map[string]string{"amb": fmt.Sprint(i)})
		if err := f.rp.DeleteRecord(ctx, KindCommit, CommitName(layoutDot, rec.Commit.ID)); err != nil {
			f.t.Fatal(err)
		}
		rec.Commit.ID = base[:30] + dotmesh.CommitID(tail)
		if err := f.rp.PutRecord(ctx, KindCommit, CommitName(layoutDot, rec.Commit.ID), EncodeCommitRecord(rec)); err != nil {
			f.t.Fatal(err)
		}
		ids = append(ids, rec.Commit.ID)
	}
	return ids[0], ids[1]
}

// TestLoadCommitsCacheAfterGC: a cache filled before GC marked where a
// history now starts never hands out the old record (whose parent GC
// removed), which would make a push's Finish see a broken history.
func TestLoadCommitsCacheAfterGC(t *testing.T) {
	ctx := context.Background()
	f := newLayoutFixture(t)
	cs := f.master(3)
	var cache RecordCache
	before, err := LoadCommits(ctx, f.rp, layoutDot, 4, &cache)
	if err != nil || len(before) != 3 {
		t.Fatalf("LoadCommits: %d records, %v", len(before), err)
	}
	if _, err := f.r.GC(ctx, GCOptions{Keep: 2}); err != nil {
		t.Fatal(err)
	}
	after, err := LoadCommits(ctx, f.rp, layoutDot, 4, &cache)
	if err != nil {
		t.Fatal(err)
	}
	start := after[cs[1].Commit.ID]
	if len(after) != 2 || start == nil || !start.Commit.Pruned {
		t.Fatalf("after GC: %d records, start %+v; want 2 with %s marked pruned", len(after), start, cs[1].Commit.ID)
	}
	if got := Ancestry(after, cs[2].Commit.ID); len(got) != 2 {
		t.Fatalf("history after GC has %d commits; want 2", len(got))
	}
}
