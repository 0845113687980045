package btrfs

import (
	"encoding/binary"
	"testing"
)

// searchItem appends one item, as the kernel lays it out, to buf.
func searchItem(buf []byte, objectid, offset uint64, typ uint32, item []byte) []byte {
	h := make([]byte, searchHdrSize)
	binary.NativeEndian.PutUint64(h[0:], 7) // transid of the block, unused
	binary.NativeEndian.PutUint64(h[8:], objectid)
	binary.NativeEndian.PutUint64(h[16:], offset)
	binary.NativeEndian.PutUint32(h[24:], typ)
	binary.NativeEndian.PutUint32(h[28:], uint32(len(item)))
	return append(append(buf, h...), item...)
}

// inodeItem is the start of a btrfs_inode_item with its transid.
func inodeItem(transid uint64) []byte {
	b := make([]byte, 160)
	binary.LittleEndian.PutUint64(b[0:], 3) // generation of creation
	binary.LittleEndian.PutUint64(b[8:], transid)
	return b
}

func extentItem(generation uint64) []byte {
	b := make([]byte, 53)
	binary.LittleEndian.PutUint64(b, generation)
	return b
}

func TestNewerItem(t *testing.T) {
	const gen = 100
	old := searchItem(nil, 256, 0, inodeItemKey, inodeItem(gen))
	old = searchItem(old, 256, 0, 12, []byte("a ref item, never checked"))
	old = searchItem(old, 257, 4096, extentDataKey, extentItem(gen))
	for _, c := range []struct {
		name    string
		buf     []byte
		n       int
		changed bool
		last    searchKey
		bad     bool
	}{
		{"nothing newer", old, 3, false, searchKey{257, 4096, extentDataKey}, false},
		{"newer inode", searchItem(old, 258, 0, inodeItemKey, inodeItem(gen+1)), 4, true, searchKey{258, 0, inodeItemKey}, false},
		{"newer extent", searchItem(old, 258, 0, extentDataKey, extentItem(gen+1)), 4, true, searchKey{258, 0, extentDataKey}, false},
		{"newer type not checked", searchItem(old, 258, 0, 84, extentItem(gen+1)), 4, false, searchKey{258, 0, 84}, false},
		{"short inode item", searchItem(old, 258, 0, inodeItemKey, inodeItem(gen + 1)[:15]), 4, false, searchKey{258, 0, inodeItemKey}, false},
		{"fewer items than said", old, 4, false, searchKey{257, 4096, extentDataKey}, true},
		{"item overruns the buffer", old[:len(old)-1], 3, false, searchKey{257, 4096, extentDataKey}, true},
		{"none", nil, 0, false, searchKey{}, false},
	} {
		changed, last, err := newerItem(c.buf, c.n, gen)
		if changed != c.changed || last != c.last || (err != nil) != c.bad {
			t.Errorf("%s: newerItem = %v, %+v, %v; want %v, %+v, error %v", c.name, changed, last, err, c.changed, c.last, c.bad)
		}
	}
}

func TestSearchKeyNext(t *testing.T) {
	max := ^uint64(0)
	for _, c := range []struct {
		k, want searchKey
		ok      bool
	}{
		{searchKey{5, 9, 1}, searchKey{5, 10, 1}, true},
		{searchKey{5, max, 1}, searchKey{5, 0, 2}, true},
		{searchKey{5, max, 255}, searchKey{6, 0, 0}, true},
		{searchKey{max, max, 255}, searchKey{}, false},
	} {
		if got, ok := c.k.next(); got != c.want || ok != c.ok {
			t.Errorf("%+v.next() = %+v, %v; want %+v, %v", c.k, got, ok, c.want, c.ok)
		}
	}
}

// FuzzNewerItem: whatever the buffer holds, newerItem never reads past it,
// and a change it reports is an inode item or file extent newer than gen.
func FuzzNewerItem(f *testing.F) {
	f.Add(searchItem(searchItem(nil, 256, 0, inodeItemKey, inodeItem(5)), 257, 0, extentDataKey, extentItem(9)), 2, uint64(6))
	f.Add([]byte{1, 2, 3}, 1, uint64(0))
	f.Fuzz(func(t *testing.T, buf []byte, n int, gen uint64) {
		if n > 1<<16 {
			n = 1 << 16
		}
		changed, last, err := newerItem(buf, n, gen)
		if changed && err != nil {
			t.Fatalf("changed with an error: %v", err)
		}
		if changed && last.typ != inodeItemKey && last.typ != extentDataKey {
			t.Fatalf("changed on an item of type %d", last.typ)
		}
	})
}
