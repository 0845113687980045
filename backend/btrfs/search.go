package btrfs

import (
	"encoding/binary"
	"fmt"
)

// Item types and sizes of a BTRFS_IOC_TREE_SEARCH answer (linux/btrfs.h,
// linux/btrfs_tree.h), fixed by the kernel's ABI.
const (
	inodeItemKey  = 1   // BTRFS_INODE_ITEM_KEY
	extentDataKey = 108 // BTRFS_EXTENT_DATA_KEY
	searchHdrSize = 32  // struct btrfs_ioctl_search_header
)

// searchKey is the key of one item a tree search returned.
type searchKey struct {
	objectid, offset uint64
	typ              uint32
}

// newerItem reads the n items the kernel wrote into a tree search's buf
// and says whether one is an inode item or file extent written in a
// transaction after gen. It returns the last item's key, after which the
// next search goes on. A buffer the items overrun is an error, never a
// read past its end.
func newerItem(buf []byte, n int, gen uint64) (changed bool, last searchKey, err error) {
	for i, pos := 0, 0; i < n; i++ {
		if pos+searchHdrSize > len(buf) {
			return false, last, fmt.Errorf("item %d beyond the buffer", i)
		}
		h := buf[pos : pos+searchHdrSize]
		last = searchKey{
			objectid: binary.NativeEndian.Uint64(h[8:]),
			offset:   binary.NativeEndian.Uint64(h[16:]),
			typ:      binary.NativeEndian.Uint32(h[24:]),
		}
		size := int(binary.NativeEndian.Uint32(h[28:]))
		pos += searchHdrSize
		if size > len(buf)-pos {
			return false, last, fmt.Errorf("item %d beyond the buffer", i)
		}
		item := buf[pos : pos+size]
		pos += size
		switch {
		case last.typ == inodeItemKey && size >= 16 && binary.LittleEndian.Uint64(item[8:]) > gen: // transid
			return true, last, nil
		case last.typ == extentDataKey && size >= 8 && binary.LittleEndian.Uint64(item) > gen: // generation
			return true, last, nil
		}
	}
	return false, last, nil
}

// next is the smallest key after k; ok is false after the largest key.
func (k searchKey) next() (searchKey, bool) {
	switch {
	case k.offset < ^uint64(0):
		return searchKey{k.objectid, k.offset + 1, k.typ}, true
	case k.typ < 255:
		return searchKey{k.objectid, 0, k.typ + 1}, true
	case k.objectid < ^uint64(0):
		return searchKey{k.objectid + 1, 0, 0}, true
	}
	return searchKey{}, false
}
