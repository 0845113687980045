//go:build linux && cgo

package btrfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// recover removes what interrupted operations left, so that every branch
// is in the state before or after the operation and a retry succeeds:
//
//   - trash entries (deleted branches and commits, replaced working states);
//   - a branch's "rollback" subvolume: a Rollback died before or after its
//     atomic exchange, and "live" holds a complete state either way;
//   - commits/.recv-* staging directories of receives that died, with the
//     half-received subvolume in them (writable, no received UUID);
//   - commits/<id> directories without their snapshot (a Commit that died
//     between mkdir and the snapshot ioctl).
func (b *Backend) recover() error {
	var errs []error
	ents, err := os.ReadDir(b.trashDir())
	if err != nil {
		return fmt.Errorf("read trash: %w", err)
	}
	for _, e := range ents {
		errs = append(errs, b.removeLeftover(filepath.Join(b.trashDir(), e.Name())))
	}
	refs, err := b.listBranchDirs()
	if err != nil {
		return err
	}
	for _, br := range refs {
		if ok, _ := exists(b.rollbackPath(br)); ok {
			errs = append(errs, b.removeLeftover(b.rollbackPath(br)))
		}
		cents, err := os.ReadDir(b.commitsDir(br))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range cents {
			p := filepath.Join(b.commitsDir(br), e.Name())
			switch {
			case strings.HasPrefix(e.Name(), "."):
				errs = append(errs, b.removeLeftover(p))
			case dotmesh.ValidateID("commit", e.Name(), false) == nil:
				if ok, _ := exists(filepath.Join(p, "snap")); !ok {
					errs = append(errs, b.removeLeftover(p))
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing leftovers of interrupted operations: %w", err)
	}
	return nil
}

func (b *Backend) removeLeftover(path string) error {
	b.log.Info("removing leftover of an interrupted operation", "path", path)
	return removeTree(path)
}
