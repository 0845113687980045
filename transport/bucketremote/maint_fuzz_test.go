package bucketremote

import (
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzLogRef: any ref Log is given resolves to a stored commit or fails
// with a sentinel saying why; it never panics.
func FuzzLogRef(f *testing.F) {
	ids := []dotmesh.CommitID{"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcd00", "fedcba9876543210fedcba9876543210"}
	commits := map[dotmesh.CommitID]*CommitRecord{}
	parent := dotmesh.CommitID("")
	for _, id := range ids {
		commits[id] = &CommitRecord{Commit: dotmesh.Commit{ID: id, Parent: parent}}
		parent = id
	}
	dr := &refsOfDot{
		dot:      dotmesh.DotName{Namespace: "admin", Name: "app"},
		branches: map[string]BranchRef{"master": {Head: ids[2]}, "dev": {Head: ids[1]}},
		tags:     []dotmesh.Tag{{Name: "v1", Commit: ids[0]}, {Name: "gone", Commit: "00000000000000000000000000000000"}},
	}
	for _, s := range []string{"HEAD", "@", "master^", "dev~1", "v1", "0123", "0123456789abcdef0123456789abcd", "FEDC^^", "HEAD~999999999", "~", "^x", "gone", "a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pr, err := dotmesh.ParseRef(s)
		if err != nil {
			return
		}
		start, what, err := logRefBase(dr, pr, commits)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrNotFound) && !errors.Is(err, dotmesh.ErrAmbiguous) {
				t.Fatalf("ref %q: %v is neither ErrNotFound nor ErrAmbiguous", s, err)
			}
			return
		}
		if what == "" || start == "" {
			t.Fatalf("ref %q: base %q named %q", s, start, what)
		}
		if pr.Prefix != "" && strings.HasPrefix(what, "commit ") && !strings.HasPrefix(string(start), pr.Prefix) {
			t.Fatalf("ref %q resolved to commit %s", s, start)
		}
	})
}
