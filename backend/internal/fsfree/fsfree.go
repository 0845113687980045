// Package fsfree reports the room left in the file system holding a
// directory, for the backends whose capacity is their file system's.
package fsfree

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Capacity reads statfs(2) of dir: the bytes an unprivileged writer may
// still use (f_bavail, which leaves out blocks reserved for root) and the
// file system's size.
func Capacity(dir string) (dotmesh.Capacity, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return dotmesh.Capacity{}, fmt.Errorf("reading the free space of %s: %w", dir, err)
	}
	bs := int64(st.Bsize) //nolint:unconvert // int32 on some platforms
	return dotmesh.Capacity{AvailableBytes: int64(st.Bavail) * bs, TotalBytes: int64(st.Blocks) * bs}, nil
}
