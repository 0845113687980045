// Package bigpipe makes OS pipes of a megabyte for streams between this
// process and a command it runs.
//
// Linux gives a pipe 64 KiB. A stream through one stalls its writer every
// 64 KiB until the reader has run, and on a loaded machine each of those
// turns waits for a CPU: a zfs send relayed to a peer, or fed from one
// into zfs receive, moved a 4 MiB increment at 25 MB/s that way, where a
// pipe of a megabyte lets each side run ahead by that much.
package bigpipe

import (
	"os"

	"golang.org/x/sys/unix"
)

// Size is the capacity asked for: the default ceiling for unprivileged
// processes (/proc/sys/fs/pipe-max-size).
const Size = 1 << 20

// New returns a pipe whose capacity is Size where the kernel allows it
// (best effort: a smaller pipe only costs speed).
func New() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	// Through SyscallConn: Fd would put w into blocking mode.
	if rc, err := w.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, Size) })
	}
	return r, w, nil
}
