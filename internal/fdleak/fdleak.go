//go:build linux

// Package fdleak keeps a daemon a program starts from inheriting the
// descriptors the program itself inherited.
//
// Go opens its own descriptors close-on-exec, but one it inherited keeps
// its flags: a `flock LOCKFILE cmd` wrapper's lock descriptor, say, passes
// to every child. A daemon that outlives the program (zfs-fuse forks into
// the background and stays up) would then hold the wrapper's lock for its
// whole life, and every later `flock` on that file would wait for it.
package fdleak

import (
	"os"
	"strconv"
	"syscall"
)

// CloseInheritedOnExec marks every open descriptor above stderr
// close-on-exec. Call it before starting a process that may outlive the
// caller; it is harmless for descriptors Go opened.
func CloseInheritedOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
