package dotmesh_test

import (
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzValidateTreePath: an accepted path stays inside any tree it is
// joined to, and is exactly the clean form it names.
func FuzzValidateTreePath(f *testing.F) {
	for _, s := range []string{"", "db", "db/base/1", "/etc", "..", "a/../b", "a//b", "a/", "./a", "a\x00b", "...", "a/..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if err := dotmesh.ValidateTreePath(p); err != nil {
			if !strings.Contains(err.Error(), "path") {
				t.Fatalf("error %q does not say what is wrong", err)
			}
			return
		}
		if p == "" {
			return
		}
		if path.Clean(p) != p || path.IsAbs(p) || strings.ContainsRune(p, 0) {
			t.Fatalf("accepted %q, which is not clean and relative", p)
		}
		root := "/tree/root"
		j := filepath.Join(root, p)
		if j == root || !strings.HasPrefix(j, root+"/") {
			t.Fatalf("accepted %q, which leaves the tree: %s", p, j)
		}
		for part := range strings.SplitSeq(p, "/") {
			if part == "" || part == "." || part == ".." {
				t.Fatalf("accepted %q with a part %q", p, part)
			}
		}
	})
}
