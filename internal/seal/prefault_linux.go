package seal

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHuge asks for transparent huge pages under the 2 MiB-aligned
// inside of b, before it is first written.
func adviseHuge(b []byte) {
	const huge = 2 << 20
	if len(b) < 2*huge {
		return
	}
	off := (huge - uintptr(unsafe.Pointer(&b[0]))%huge) % huge
	n := (uintptr(len(b)) - off) / huge * huge
	_ = unix.Madvise(b[off:off+n], unix.MADV_HUGEPAGE) // advice only
}
