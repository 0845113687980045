// Package changewatch proves that a mounted file system was written to
// since a point, without reading it: a fanotify mark on the mount
// (FAN_MARK_MOUNT, FAN_MODIFY) is armed before the point, and any event
// after it is the proof. A backend asks it before its exact (and costly)
// check for changes; "no event seen" proves nothing (writes through mmap,
// through another mount of the same file system, or before the mark was
// armed make none, and a queue overflow loses them), so the caller then
// runs the exact check. Only a write makes an event: creating, deleting,
// renaming and chmod do not on a mount mark, and fall back too.
//
// Ordering, for a caller that snapshots at time ts between Before and
// After:
//
//	Before: drain the queue, answer, arm the mark   (events so far counted)
//	        snapshot                                 (ts)
//	After:  drain the queue, settle at the snapshot  (events in between:
//	                                                  unsettled, see below)
//
// A write's event is queued after its data reached the file system, so an
// event read after After comes from a write after ts: it proves the next
// commit changed. An event read between Before and After may come from a
// write before or after ts, so the key stays unsettled and the next
// Before answers false (the exact check decides). After the first event
// of a settled key its mark is removed, so that a busy writer costs one
// event per commit, not one per write; Before arms it again.
//
// One fanotify group serves every key (the default limit is 128 groups
// per user); events are told apart by the device of the file they name.
// A queued event holds its file open, which makes an unmount fail with
// EBUSY: events are read as they arrive, and Forget drains the queue and
// removes the mark before the caller unmounts.
//
// Hand-written over golang.org/x/sys/unix: no maintained Go library
// exposes fanotify mount marks with a synchronous drain.
package changewatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUnavailable: fanotify cannot be used here (not root, or a kernel
// without it); the caller runs its exact checks only.
var ErrUnavailable = errors.New("fanotify is unavailable")

// Watcher watches the mounts of many keys (a backend's working states).
type Watcher struct {
	f  *os.File
	rc syscall.RawConn

	mu     sync.Mutex
	byKey  map[string]*entry
	byDev  map[uint64]*entry
	buf    []byte
	closed bool
	done   chan struct{}
}

// entry is one key's mount and what was seen of it.
type entry struct {
	key, path string
	dev       uint64
	marked    bool
	// base is the point the key is settled at ("" none): changed says
	// whether a write was seen since.
	base    string
	changed bool
	// open: between Before and After; seen: an event came meanwhile.
	open, seen bool
}

// New starts a watcher. It fails with ErrUnavailable where fanotify
// cannot watch mounts.
func New() (*Watcher, error) {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%w: fanotify_init: %v", ErrUnavailable, err)
	}
	f := os.NewFile(uintptr(fd), "fanotify")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	w := &Watcher{f: f, rc: rc, byKey: map[string]*entry{}, byDev: map[uint64]*entry{}, buf: make([]byte, 64<<10), done: make(chan struct{})}
	go w.read()
	return w, nil
}

// read takes events as they arrive, until Close.
func (w *Watcher) read() {
	defer close(w.done)
	_ = w.rc.Read(func(fd uintptr) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.drainFD(int(fd)) != nil
	})
}

// drain reads every queued event; w.mu is held.
func (w *Watcher) drain() {
	if w.closed {
		return
	}
	_ = w.rc.Control(func(fd uintptr) { _ = w.drainFD(int(fd)) })
}

// drainFD reads events until none is queued; an error other than EAGAIN
// ends the reader. w.mu is held.
func (w *Watcher) drainFD(fd int) error {
	for {
		n, err := unix.Read(fd, w.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return errors.New("fanotify: end of events")
		}
		w.apply(w.buf[:n])
	}
}

// parseEvents calls fn with the mask and file descriptor of each event
// in b, as read(2) of a fanotify group returns them (struct
// fanotify_event_metadata, each event_len long); a malformed rest ends it.
func parseEvents(b []byte, fn func(mask uint64, fd int32)) {
	for len(b) >= unix.FAN_EVENT_METADATA_LEN {
		evLen := binary.NativeEndian.Uint32(b[0:4])
		if evLen < unix.FAN_EVENT_METADATA_LEN || uint64(evLen) > uint64(len(b)) {
			return
		}
		fn(binary.NativeEndian.Uint64(b[8:16]), int32(binary.NativeEndian.Uint32(b[16:20])))
		b = b[evLen:]
	}
}

// apply counts the events in b; w.mu is held.
func (w *Watcher) apply(b []byte) {
	parseEvents(b, func(mask uint64, fd int32) {
		if mask&unix.FAN_Q_OVERFLOW != 0 {
			// Events were lost, some of which may have been between a
			// Before and its After: nothing is settled any more.
			for _, e := range w.byKey {
				e.base, e.changed, e.seen = "", false, e.open
			}
		}
		if fd < 0 {
			return
		}
		var st unix.Stat_t
		err := unix.Fstat(int(fd), &st)
		unix.Close(int(fd))
		if err != nil {
			return
		}
		e := w.byDev[st.Dev]
		if e == nil {
			return
		}
		if e.open {
			e.seen = true
			return
		}
		e.changed = true
		// Proven (or unsettled): no need to hear of more writes until
		// the next Before arms the mark again.
		w.unmark(e)
	})
}

// unmark removes e's mark; w.mu is held.
func (w *Watcher) unmark(e *entry) {
	if !e.marked {
		return
	}
	e.marked = false
	if w.closed {
		return // closing the group removed every mark
	}
	var st unix.Stat_t
	if unix.Stat(e.path, &st) == nil && st.Dev == e.dev {
		_ = unix.FanotifyMark(int(w.fd()), unix.FAN_MARK_REMOVE|unix.FAN_MARK_MOUNT, unix.FAN_MODIFY, unix.AT_FDCWD, e.path)
	}
}

func (w *Watcher) fd() uintptr {
	var fd uintptr
	_ = w.rc.Control(func(f uintptr) { fd = f })
	return fd
}

// Before reads the events so far and reports whether key, whose mount is
// at path, was written to since it was settled at base (false when it
// was not, or nothing can be said: the caller checks exactly). It then
// arms the mark on path, which must be the mountpoint itself, so that
// writes after the caller's snapshot are seen; the caller ends with After
// (also when it fails). An error says the mark could not be armed; the
// key is then left unsettled.
func (w *Watcher) Before(key, path, base string) (bool, error) {
	var st, pst unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, fmt.Errorf("watching %s: %w", path, err)
	}
	if err := unix.Stat(path+"/..", &pst); err != nil {
		return false, fmt.Errorf("watching %s: %w", path, err)
	}
	if st.Dev == pst.Dev {
		// Not a mountpoint: a mark would watch the file system below.
		return false, fmt.Errorf("watching %s: not a mountpoint", path)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false, fmt.Errorf("%w: the watcher is closed", ErrUnavailable)
	}
	w.drain()
	e := w.byKey[key]
	if e != nil && (e.path != path || e.dev != st.Dev) {
		w.drop(e) // mounted anew: what it saw was of another mount
		e = nil
	}
	changed := e != nil && base != "" && e.base == base && e.changed
	if e == nil {
		if old := w.byDev[st.Dev]; old != nil {
			w.drop(old) // its mount is gone; the device number was reused
		}
		e = &entry{key: key, path: path, dev: st.Dev}
		w.byKey[key], w.byDev[st.Dev] = e, e
	}
	e.open, e.seen = true, false
	if !e.marked {
		if err := unix.FanotifyMark(int(w.fd()), unix.FAN_MARK_ADD|unix.FAN_MARK_MOUNT, unix.FAN_MODIFY, unix.AT_FDCWD, path); err != nil {
			e.base, e.changed = "", false
			return changed, fmt.Errorf("watching %s: fanotify_mark: %w", path, err)
		}
		e.marked = true
	}
	return changed, nil
}

// After reads the events so far and settles key at point: a write seen
// from now on makes Before(key, …, point) report true. When an event
// came since Before, or point is "", the key is left unsettled.
func (w *Watcher) After(key, point string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.drain()
	e := w.byKey[key]
	if e == nil {
		return
	}
	e.base, e.changed = point, false
	if e.seen || !e.marked {
		e.base = ""
	}
	e.open, e.seen = false, false
}

// Forget removes key's mark and what was seen of it: call it before its
// mount goes away or its data is replaced (a rollback), so that no queued
// event keeps the mount busy and none counts for the new data.
func (w *Watcher) Forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.byKey[key]; e != nil {
		w.unmark(e)
		w.drain()
		w.drop(e)
	}
}

// drop forgets e; w.mu is held.
func (w *Watcher) drop(e *entry) {
	if e.marked {
		w.unmark(e)
	}
	delete(w.byKey, e.key)
	if w.byDev[e.dev] == e {
		delete(w.byDev, e.dev)
	}
}

// Close removes every mark and stops the watcher.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	err := w.f.Close() // removes the marks and frees the queued events
	<-w.done
	return err
}
