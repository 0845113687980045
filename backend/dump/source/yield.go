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
// an RLIMIT_NICE of 20 or more; without them the thread never yields.

// canYield reports whether a thread may enter SCHED_IDLE and leave it
// again, tried once on a thread of its own.
var canYield = sync.OnceValue(func() bool {
	ok := make(chan bool)
	go func() {
		// Never unlocked: the thread may be left yielding, and ends with
		// this goroutine.
		runtime.LockOSThread()
		ok <- setYield(0, true) == nil && setYield(0, false) == nil
	}()
	return <-ok
})

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
