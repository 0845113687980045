package dotmesh

import (
	"reflect"
	"testing"
)

// syncWork names the dots with a commit the node does not hold or a
// held commit that is gone, and no other.
func TestSyncWork(t *testing.T) {
	commits := []string{"commits/a/1", "commits/a/2", "commits/b/1", "commits/c/1", "commits/e/1"}
	replicas := []string{
		"replicas/a/1/n1", "replicas/a/2/n1", "replicas/a/2/n2", // a: all held
		"replicas/b/1/n2",                    // b: held elsewhere only
		"replicas/c/1/n1", "replicas/c/9/n1", // c: 9 is gone
		"replicas/d/5/n1",  // d: no commits left
		"replicas/e/1/n10", // e: another node whose name n1 begins
	}
	got := syncWork(commits, replicas, "n1")
	want := map[DotID]bool{"b": true, "c": true, "d": true, "e": true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("syncWork = %v, want %v", got, want)
	}
	if got := syncWork(nil, nil, "n1"); len(got) != 0 {
		t.Fatalf("nothing stored: %v", got)
	}
}
