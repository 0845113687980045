// Package branchdirs lists branches that backends keep as directories
// root/<dot id>/<branch>.
package branchdirs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// List returns the branches below root: directories root/<dot>/<branch>
// whose names are a valid dot id and branch name and for which keep (when
// not nil) is true, sorted by name. A dot directory that vanishes while
// listing is skipped.
func List(root string, keep func(dotmesh.BranchRef) bool) ([]dotmesh.BranchRef, error) {
	dots, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list branches: %w", err)
	}
	var out []dotmesh.BranchRef
	for _, d := range dots {
		if !d.IsDir() || dotmesh.ValidateID("dot", d.Name(), false) != nil {
			continue
		}
		brs, err := os.ReadDir(filepath.Join(root, d.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("list branches: %w", err)
		}
		for _, e := range brs {
			ref := dotmesh.BranchRef{Dot: dotmesh.DotID(d.Name()), Branch: e.Name()}
			if e.IsDir() && ref.Validate() == nil && (keep == nil || keep(ref)) {
				out = append(out, ref)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}
