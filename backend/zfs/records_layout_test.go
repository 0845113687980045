package zfs_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// recProps lists the io.dotmesh:rec.* properties set on dataset d itself
// (not inherited).
func recProps(t *testing.T, d string) []string {
	t.Helper()
	out := zfstest.ZFS(t, "get", "-H", "-o", "property,source", "all", d)
	var props []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, "\t")
		if len(f) == 2 && strings.HasPrefix(f[0], "io.dotmesh:rec.") && f[1] == "local" {
			props = append(props, f[0])
		}
	}
	return props
}

// inheritedRecProps lists the io.dotmesh:rec.* properties that the
// datasets of d's tree see, set or inherited.
func inheritedRecProps(t *testing.T, d string) []string {
	t.Helper()
	out := zfstest.ZFS(t, "get", "-H", "-r", "-o", "name,property", "all", d)
	var props []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(l, "\tio.dotmesh:rec.") {
			props = append(props, l)
		}
	}
	return props
}

// Records live apart from the dot's datasets: zfs hands inherited user
// properties to every command that opens a dataset, so records on the
// container slowed every command on the dot as its history grew.
func TestRecordsNotInheritedByTheDot(t *testing.T) {
	x := newH(t)
	ctx := context.Background()
	ref := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	x.must(x.b.CreateBranch(ctx, ref, nil), "CreateBranch")
	c := x.commit(ref)
	recs := map[string][]byte{"dot": []byte(`{"id":"x"}`), "commit." + string(c.ID): []byte(strings.Repeat("r", 9000))}
	x.must(x.b.KeepRecords(ctx, ref.Dot, recs), "KeepRecords")
	got, err := x.b.Records(ctx) // waits for the writes
	x.must(err, "Records")
	if len(got[ref.Dot]) != 2 {
		t.Fatalf("Records: %d records of the dot, want 2", len(got[ref.Dot]))
	}
	container := x.b.Root() + "/" + string(ref.Dot)
	if p := inheritedRecProps(t, container); len(p) > 0 {
		t.Errorf("the dot's datasets carry record properties:\n%s", strings.Join(p, "\n"))
	}
	if p := recProps(t, x.b.Root()+"/records/"+string(ref.Dot)); len(p) != 3 { // the commit's in two parts
		t.Errorf("records filesystem holds %v, want 3 properties", p)
	}
}

// oldRecord renders a record as an older version set it on the container.
func oldRecord(key string, v []byte) string {
	return fmt.Sprintf("io.dotmesh:rec.%s=1:%08x:%s", hex.EncodeToString([]byte(key)), crc32.ChecksumIEEE(v), base64.StdEncoding.EncodeToString(v))
}

// Records an older version kept on the container are read there, and
// moved off it by the first record kept for the dot.
func TestRecordsMovedOffTheContainer(t *testing.T) {
	x := newH(t)
	ctx := context.Background()
	ref := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	x.must(x.b.CreateBranch(ctx, ref, nil), "CreateBranch")
	container := x.b.Root() + "/" + string(ref.Dot)
	zfstest.ZFS(t, "set", oldRecord("dot", []byte("old dot")), container)
	zfstest.ZFS(t, "set", oldRecord("branch.master", []byte("old branch")), container)

	got, err := x.b.Records(ctx)
	x.must(err, "Records")
	if r := got[ref.Dot]; string(r["dot"]) != "old dot" || string(r["branch.master"]) != "old branch" {
		t.Fatalf("Records before the move: %q", r)
	}

	x.must(x.b.KeepRecords(ctx, ref.Dot, map[string][]byte{"branch.master": []byte("new branch"), "tag.v1": []byte("tag")}), "KeepRecords")
	got, err = x.b.Records(ctx)
	x.must(err, "Records")
	r := got[ref.Dot]
	if len(r) != 3 || string(r["dot"]) != "old dot" || string(r["branch.master"]) != "new branch" || string(r["tag.v1"]) != "tag" {
		t.Fatalf("Records after the move: %q", r)
	}
	if p := recProps(t, container); len(p) > 0 {
		t.Errorf("the container still holds %v", p)
	}
	// A removal after the move does not bring the old copy back.
	x.must(x.b.KeepRecords(ctx, ref.Dot, map[string][]byte{"dot": nil}), "KeepRecords (remove)")
	got, err = x.b.Records(ctx)
	x.must(err, "Records")
	if _, ok := got[ref.Dot]["dot"]; ok || len(got[ref.Dot]) != 2 {
		t.Fatalf("Records after removing dot: %q", got[ref.Dot])
	}
}

// The records go with the dot's storage, and a records filesystem a
// crash left without its dot is removed at Open.
func TestRecordsGoWithTheDot(t *testing.T) {
	b, opts := openBackend(t)
	ctx := context.Background()
	ref := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	if err := b.CreateBranch(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.KeepRecords(ctx, ref.Dot, map[string][]byte{"dot": []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Records(ctx); err != nil {
		t.Fatal(err)
	}
	fs := b.Root() + "/records/" + string(ref.Dot)
	zfstest.ZFS(t, "list", fs) // fails the test when missing
	if err := b.DeleteBranch(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if out := zfstest.ZFS(t, "list", "-H", "-o", "name", "-r", b.Root()); strings.Contains(out, string(ref.Dot)) {
		t.Fatalf("after the dot's last branch went, zfs still lists:\n%s", out)
	}
	// Records of a dot without storage are not kept.
	if err := b.KeepRecords(ctx, ref.Dot, map[string][]byte{"dot": []byte("late")}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[ref.Dot]; ok {
		t.Errorf("Records lists the removed dot: %q", got[ref.Dot])
	}
	if out := zfstest.ZFS(t, "list", "-H", "-o", "name", "-r", b.Root()); strings.Contains(out, string(ref.Dot)) {
		t.Fatalf("a record kept after the dot went made:\n%s", out)
	}

	// A stray records filesystem (the crash came between the container's
	// removal and its own).
	stray := dotmesh.NewDotID()
	zfstest.ZFS(t, "create", "-o", "canmount=off", b.Root()+"/records/"+string(stray))
	zfstest.ZFS(t, "set", oldRecord("dot", []byte("stray")), b.Root()+"/records/"+string(stray))
	got, err = b.Records(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[stray]; ok {
		t.Errorf("Records lists a dot without storage: %q", got[stray])
	}
	b.Close()
	b2, err := zfs.Open(ctx, opts)
	if err != nil {
		t.Fatalf("zfs.Open again: %v", err)
	}
	defer b2.Close()
	if out := zfstest.ZFS(t, "list", "-H", "-o", "name", "-r", b.Root()); strings.Contains(out, string(stray)) {
		t.Fatalf("Open left the stray records filesystem:\n%s", out)
	}
}
