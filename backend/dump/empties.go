package dump

import (
	"context"
	"errors"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// emptyDirs remembers the working trees emptyDir found empty, and learns
// from the kernel when one may not be any more: each is watched with
// inotify (an entry created or moved in, the tree's own attributes
// changed, the tree moved, deleted or unmounted), whoever writes to it
// and by whatever path (a container's bind mount too: inotify watches the
// inode). A listing of 1,001 dots, most of them empty before their first
// commit, spent a third of the node's time in one lstat per tree (the
// stamp this replaces); now the pending notifications are read once per
// listing (BeginUsage) and a remembered tree costs a map lookup.
//
// The rule is as strict as the list cache's: a tree is remembered only
// from a check made after its watch was in place, so a change after the
// check queues a notification, and the kernel queues it before the
// writing system call returns; the queue is read before the answer is
// used (by every Usage outside a listing, once before a listing's). A
// full queue (IN_Q_OVERFLOW) forgets everything. The backend's own moves
// of a branch's directories (which move a tree's parents, not the tree)
// forget the tree themselves (forget). Where inotify cannot be had (no
// descriptors, no watches left) a tree is checked every time.
type emptyDirs struct {
	mu    sync.Mutex
	open  bool // fd is an inotify descriptor (opened on first use)
	fd    int
	byDir map[string]int32 // remembered empty trees and their watches
	byWd  map[int32][]string
}

// emptyWatch: an entry added (created, linked, moved in), the tree's
// attributes changed (a rename over it counts its links), the tree moved,
// deleted or its file system unmounted; never through a symlink.
const emptyWatch = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ATTRIB |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_UNMOUNT |
	unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW

// usageBatch keys the context of a listing's Usage calls, whose pending
// notifications BeginUsage has read.
type usageBatch struct{ b *Backend }

// BeginUsage implements dotmesh.UsageBatcher: the notifications pending
// now are read once for all of a listing's Usage calls.
func (b *Backend) BeginUsage(ctx context.Context) context.Context {
	b.empties.mu.Lock()
	b.empties.drainLocked()
	b.empties.mu.Unlock()
	return context.WithValue(ctx, usageBatch{b}, true)
}

// empty is emptyDir(dir), remembered; drained says that the pending
// notifications were read since the caller's listing began.
func (e *emptyDirs) empty(dir string, drained bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !drained {
		e.drainLocked()
	}
	if _, ok := e.byDir[dir]; ok {
		return true
	}
	if !e.open {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			return emptyDir(dir)
		}
		e.fd, e.open = fd, true
	}
	// The watch first, then the check: a change after the check is
	// then a notification.
	wd, err := unix.InotifyAddWatch(e.fd, dir, emptyWatch)
	if err != nil {
		return emptyDir(dir)
	}
	w := int32(wd)
	if !emptyDir(dir) {
		if len(e.byWd[w]) == 0 { // not another path's watch of the same tree
			_, _ = unix.InotifyRmWatch(e.fd, uint32(wd))
		}
		return false
	}
	if e.byDir == nil {
		e.byDir, e.byWd = make(map[string]int32), make(map[int32][]string)
	}
	e.byDir[dir] = w
	e.byWd[w] = append(e.byWd[w], dir)
	return true
}

// forget drops dir, whose parents the backend is about to move or has
// moved (a notification on the tree would not tell).
func (e *emptyDirs) forget(dir string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w, ok := e.byDir[dir]
	if !ok {
		return
	}
	e.dropLocked(w, false)
}

// dropLocked forgets the trees of watch w, and ends the watch unless the
// kernel ended it (ignored).
func (e *emptyDirs) dropLocked(w int32, ignored bool) {
	for _, d := range e.byWd[w] {
		delete(e.byDir, d)
	}
	delete(e.byWd, w)
	if !ignored {
		_, _ = unix.InotifyRmWatch(e.fd, uint32(w)) // its IN_IGNORED is read and dropped later
	}
}

// drainLocked reads every pending notification and forgets the trees
// they are about; any error of the descriptor forgets everything.
func (e *emptyDirs) drainLocked() {
	if !e.open {
		return
	}
	var buf [4096]byte
	for {
		n, err := unix.Read(e.fd, buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil || n < unix.SizeofInotifyEvent {
			e.resetLocked()
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				e.resetLocked()
				return
			}
			if _, ok := e.byWd[ev.Wd]; ok {
				e.dropLocked(ev.Wd, ev.Mask&unix.IN_IGNORED != 0)
			}
		}
	}
}

// resetLocked forgets every tree and closes the descriptor (with it every
// watch); the next check opens a new one.
func (e *emptyDirs) resetLocked() {
	if e.open {
		_ = unix.Close(e.fd)
	}
	e.open, e.byDir, e.byWd = false, nil, nil
}

// close releases the descriptor (Backend.Close).
func (e *emptyDirs) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.resetLocked()
}
