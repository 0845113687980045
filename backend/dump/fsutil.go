package dump

import (
	"io/fs"
	"os"
	"path/filepath"
)

// removeAll is os.RemoveAll that also copes with directories a user made
// read-only (mode 0555 stops non-root owners from deleting their contents).
func removeAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil {
		return nil
	}
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, werr error) error {
		if werr == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
