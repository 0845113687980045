package source

import (
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Yielding. A dump's consumer (normalising, chunking, hashing and
// compressing its output) may lag behind the dump tool, as the spool
// holds the backlog, while the tool and its database server are the
// critical path. On a small machine a consumer thread that competes with
// them for a CPU stalls them: the server blocks on a full socket while
// its client waits for a CPU.
//
// So the consumer's thread runs under SCHED_IDLE until it is urgent
// (spool.go): the kernel gives it only CPU time nobody else wants, and
// places waking tasks on its CPU as if it were idle. Once its backlog
// grows or it starves it runs as any thread, so a busy machine slows a
// commit but cannot stall it. Leaving SCHED_IDLE needs CAP_SYS_NICE or
// an RLIMIT_NICE of 20 or more; without them the thread never yields
// (it could be starved for good).

// canYield reports whether a thread may leave SCHED_IDLE again. The
// kernel asks for the right to lower the thread's nice value down to its
// current one (CAP_SYS_NICE or RLIMIT_NICE); lowering it by one asks a
// little more. So a thread of its own lowers its nice value by one and
// puts it back, and never enters SCHED_IDLE to find out.
var canYield = sync.OnceValue(func() bool {
	ok := make(chan bool)
	go func() {
		runtime.LockOSThread()
		may, restored := lowerNiceOnce()
		if restored {
			runtime.UnlockOSThread()
		} // else the thread ends with this goroutine
		ok <- may
	}()
	return <-ok
})

// lowerNiceOnce lowers the calling thread's nice value by one and puts it
// back. restored is false only when putting it back failed (raising a
// nice value is always allowed).
func lowerNiceOnce() (may, restored bool) {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil || attr.Policy != unix.SCHED_NORMAL || attr.Nice <= -20 {
		return false, true
	}
	attr.Flags = 0
	lower := *attr
	lower.Nice--
	if unix.SchedSetAttr(0, &lower, 0) != nil {
		return false, true
	}
	return true, unix.SchedSetAttr(0, attr, 0) == nil
}

// setYield puts thread tid (0: the calling thread) under SCHED_IDLE or
// back under SCHED_NORMAL, keeping its nice value.
func setYield(tid int, yield bool) error {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return err
	}
	attr.Policy = unix.SCHED_NORMAL
	if yield {
		attr.Policy = unix.SCHED_IDLE
	}
	attr.Flags = 0
	return unix.SchedSetAttr(tid, attr, 0)
}
