package branchdirs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestList(t *testing.T) {
	root := t.TempDir()
	d1, d2 := dotmesh.NewDotID(), dotmesh.NewDotID()
	for _, p := range []string{
		string(d1) + "/master", string(d1) + "/feature", string(d1) + "/bad name",
		string(d2) + "/master", string(d2) + "/skip",
		"not-a-dot/master",
	} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, string(d2), "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := List(root, func(br dotmesh.BranchRef) bool { return br.Branch != "skip" })
	if err != nil {
		t.Fatal(err)
	}
	want := []dotmesh.BranchRef{{Dot: d1, Branch: "feature"}, {Dot: d1, Branch: "master"}, {Dot: d2, Branch: "master"}}
	slices.SortFunc(want, func(a, b dotmesh.BranchRef) int {
		if a.String() < b.String() {
			return -1
		}
		return 1
	})
	if !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	if all, err := List(root, nil); err != nil || len(all) != 4 {
		t.Fatalf("List without a filter = %v, %v", all, err)
	}
	if empty, err := List(t.TempDir(), nil); err != nil || len(empty) != 0 {
		t.Fatalf("empty root: %v, %v", empty, err)
	}
	if _, err := List(filepath.Join(root, "missing"), nil); err == nil {
		t.Fatal("listed a missing root")
	}
}
