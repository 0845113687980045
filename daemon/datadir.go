package daemon

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// MakeDataDir creates the data directory dir (and its parents) for the
// node's user, with an error that says what to do when that is impossible.
func MakeDataDir(dir string) error {
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		return nil
	}
	where := dir
	var pe *os.PathError
	if errors.As(err, &pe) {
		where = pe.Path // the part that failed: often a parent
	}
	var advice string
	switch {
	case errors.Is(err, os.ErrPermission):
		advice = fmt.Sprintf("this user may not create %s; choose a directory you own with --data-dir, or have it created for you (sudo install -d -o %d %s)", where, os.Getuid(), dir)
	case errors.Is(err, syscall.EROFS):
		advice = fmt.Sprintf("%s is on a read-only file system; choose another place with --data-dir", where)
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, os.ErrExist):
		advice = fmt.Sprintf("%s is a file, not a directory; move it away or choose another place with --data-dir", where)
	case errors.Is(err, syscall.ENOSPC):
		advice = "the disk is full; free space or choose another place with --data-dir"
	default:
		return fmt.Errorf("cannot create the data directory %s: %w", dir, err)
	}
	return fmt.Errorf("cannot create the data directory %s (%v): %s", dir, errors.Unwrap(err), advice)
}
