//go:build linux && cgo

package btrfs

/*
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <stddef.h>

static unsigned long dm_ioc_get_subvol_info(void) { return BTRFS_IOC_GET_SUBVOL_INFO; }
static unsigned long dm_ioc_snap_destroy(void) { return BTRFS_IOC_SNAP_DESTROY; }
static unsigned long dm_ioc_tree_search(void) { return BTRFS_IOC_TREE_SEARCH; }
static unsigned long dm_ioc_snap_create_v2(void) { return BTRFS_IOC_SNAP_CREATE_V2; }
static size_t dm_vol_args_v2_name_off(void) { return offsetof(struct btrfs_ioctl_vol_args_v2, name); }
*/
import "C"

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	cbtrfs "github.com/containerd/btrfs/v2"
	"golang.org/x/sys/unix"
)

// Subvolume operations. Create and snapshot go through containerd/btrfs;
// the ioctls that library lacks (GET_SUBVOL_INFO, a delete that does not
// walk the whole tree looking for nested subvolumes, and a commit's
// snapshot on directories already open, snapshotInto) are here.

func subvolCreate(path string) error {
	if err := cbtrfs.SubvolCreate(path); err != nil {
		return fmt.Errorf("create subvolume %s: %w", path, err)
	}
	return nil
}

// subvolSnapshot snapshots src to dst. Snapshot creation is one
// transaction: after a crash dst is either absent or complete.
func subvolSnapshot(dst, src string, readonly bool) error {
	if err := cbtrfs.SubvolSnapshot(dst, src, readonly); err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", src, dst, err)
	}
	return nil
}

// isSubvolume reports whether path is the root of a subvolume.
func isSubvolume(path string) bool { return cbtrfs.IsSubvolume(path) == nil }

// subvolDelete removes the subvolume at path. Commit snapshots never hold
// nested subvolumes, so one ioctl does; a working state where a user made
// nested subvolumes falls back to containerd's recursive delete.
func subvolDelete(path string) error {
	dir, name := filepath.Split(path)
	if len(name) > C.BTRFS_PATH_NAME_MAX {
		return fmt.Errorf("delete subvolume %s: name too long", path)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("delete subvolume %s: %w", path, err)
	}
	defer d.Close()
	var args C.struct_btrfs_ioctl_vol_args
	for i := 0; i < len(name); i++ {
		args.name[i] = C.char(name[i])
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, d.Fd(), uintptr(C.dm_ioc_snap_destroy()), uintptr(unsafe.Pointer(&args)))
	switch {
	case errno == 0:
		return nil
	case errno == unix.ENOTEMPTY:
		if err := cbtrfs.SubvolDelete(path); err != nil {
			return fmt.Errorf("delete subvolume %s with nested subvolumes: %w", path, err)
		}
		return nil
	default:
		return fmt.Errorf("delete subvolume %s: %w", path, errno)
	}
}

// subvolInfo is what dirty detection and receive checks need.
type subvolInfo struct {
	Generation   uint64 // transid of the last change committed to the tree
	OTransID     uint64 // transid the subvolume was created in
	Readonly     bool
	UUID         string
	ParentUUID   string // the subvolume this one is a snapshot of
	ReceivedUUID string // empty unless completely received
}

// getSubvolInfo reads the root item of the subvolume holding path. It
// reflects committed transactions only: sync first to see recent writes.
func getSubvolInfo(path string) (subvolInfo, error) {
	fd, err := openDir(path)
	if err != nil {
		return subvolInfo{}, err
	}
	defer unix.Close(fd)
	return subvolInfoOf(fd, path)
}

// subvolInfoOf is getSubvolInfo of an open directory fd (path names it in
// errors).
func subvolInfoOf(fd int, path string) (subvolInfo, error) {
	var a C.struct_btrfs_ioctl_get_subvol_info_args
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(C.dm_ioc_get_subvol_info()), uintptr(unsafe.Pointer(&a)))
	if errno != 0 {
		return subvolInfo{}, fmt.Errorf("subvolume info of %s: %w", path, errno)
	}
	return subvolInfo{
		Generation:   uint64(a.generation),
		OTransID:     uint64(a.otransid),
		Readonly:     uint64(a.flags)&C.BTRFS_ROOT_SUBVOL_RDONLY != 0, // root item flags, not ioctl ones,
		UUID:         uuidString(a.uuid),
		ParentUUID:   uuidString(a.parent_uuid),
		ReceivedUUID: uuidString(a.received_uuid),
	}, nil
}

// openDir opens a directory for ioctls: one openat, without the
// non-blocking mode and poller registration os.Open adds.
func openDir(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// snapshotInto takes a snapshot of the subvolume open at src as name in
// the directory open at dir, in one ioctl that commits its transaction.
func snapshotInto(dir int, name string, src int, readonly bool) error {
	var a C.struct_btrfs_ioctl_vol_args_v2
	if len(name) > C.BTRFS_SUBVOL_NAME_MAX {
		return fmt.Errorf("%q too long for a subvolume name", name)
	}
	a.fd = C.__s64(src)
	if readonly {
		a.flags |= C.BTRFS_SUBVOL_RDONLY
	}
	nb := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(&a), C.dm_vol_args_v2_name_off())), C.BTRFS_SUBVOL_NAME_MAX+1)
	copy(nb, name) // the rest stays zero: the name's end
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(dir), uintptr(C.dm_ioc_snap_create_v2()), uintptr(unsafe.Pointer(&a)))
	if errno != 0 {
		return errno
	}
	return nil
}

// changedSince reports whether the subvolume at path holds an inode item
// or file extent written in a transaction after gen. Any change to a file,
// directory, symlink or their attributes rewrites the inode's item with
// the transaction's id (and a write its extents with it), so this says
// what the subvolume's generation would say after a sync, without one:
// path is a read-only snapshot, complete when its ioctl returned.
//
// It is one BTRFS_IOC_TREE_SEARCH walk with min_transid gen+1, which
// skips every tree block no newer than gen, as `btrfs subvolume find-new`
// does; a fresh snapshot's root block is always newer, so the items of
// the blocks returned are checked one by one.
func changedSince(path string, gen uint64) (bool, error) {
	fd, err := openDir(path)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	return changedSinceOf(fd, path, gen)
}

// changedSinceOf is changedSince of an open directory fd (path names it
// in errors).
func changedSinceOf(fd int, path string, gen uint64) (bool, error) {
	var a C.struct_btrfs_ioctl_search_args
	a.key.tree_id = 0 // the subvolume f is in
	a.key.max_objectid = ^C.__u64(0)
	a.key.max_offset = ^C.__u64(0)
	a.key.min_transid = C.__u64(gen + 1)
	a.key.max_transid = ^C.__u64(0)
	a.key.max_type = 255
	for {
		a.key.nr_items = 4096
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(C.dm_ioc_tree_search()), uintptr(unsafe.Pointer(&a)))
		if errno != 0 {
			return false, fmt.Errorf("searching subvolume %s: %w", path, errno)
		}
		n := int(a.key.nr_items)
		if n == 0 {
			return false, nil
		}
		buf := unsafe.Slice((*byte)(unsafe.Pointer(&a.buf[0])), len(a.buf))
		changed, last, err := newerItem(buf, n, gen)
		if err != nil || changed {
			if err != nil {
				err = fmt.Errorf("searching subvolume %s: %w", path, err)
			}
			return changed, err
		}
		next, ok := last.next()
		if !ok {
			return false, nil
		}
		a.key.min_objectid, a.key.min_type, a.key.min_offset = C.__u64(next.objectid), C.__u32(next.typ), C.__u64(next.offset)
	}
}

func uuidString(u [C.BTRFS_UUID_SIZE]C.__u8) string {
	var b [16]byte
	zero := true
	for i := range b {
		b[i] = byte(u[i])
		zero = zero && b[i] == 0
	}
	if zero {
		return ""
	}
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// removeTree removes path whatever it is: a subvolume (with nested ones), a
// directory holding subvolumes, or plain files. Missing is fine.
func removeTree(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() && isSubvolume(path) {
		return subvolDelete(path)
	}
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := removeTree(filepath.Join(path, e.Name())); err != nil {
				return err
			}
		}
	}
	return os.RemoveAll(path)
}
