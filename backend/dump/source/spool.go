package source

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spool limits (see runSpooled).
const (
	spoolPoll  = time.Millisecond      // the shortest wait when caught up
	spoolPace  = 20 * time.Millisecond // the longest
	spoolBatch = 512 << 10             // bytes a wait aims to let the tool write
	spoolWatch = 10 * time.Millisecond // how often the backlog is checked
	spoolChunk = 1 << 20               // bytes read (and punched out) at a time
	spoolHigh  = 64 << 20              // backlog at which the tool is stopped...
	spoolLow   = 16 << 20              // ...and below which it continues
	// When the copy stops yielding: see yieldRule.
	spoolUrgent  = 48 << 20
	spoolStarved = 5
)

var errNoSpool = errors.New("no memfd to spool through")

// destError is a failure of a tool's destination, not of the tool.
type destError struct{ err error }

func (e destError) Error() string { return e.err.Error() }
func (e destError) Unwrap() error { return e.err }

// runSpooled runs cmd with its output going to an anonymous in-memory
// file (memfd) and copies the file to w as it grows. Through a pipe,
// every write of the tool wakes the reader: pg_dump writes 4 KiB at a
// time, 23,000 wake-ups for a 96 MB dump, which cost this process three
// times the CPU of reading the same bytes from a file. Here the reader,
// once caught up, waits for about spoolBatch more bytes (see Read), and
// punches out what it has read, so the file holds only the backlog. A file has no back-pressure of its
// own: while the backlog is over spoolHigh the tool is stopped (SIGSTOP)
// until it is under spoolLow, and it dies with this process (Pdeathsig),
// so a stopped tool is never left behind.
//
// The backlog also lets the copy fall behind the tool for a while: its
// thread yields the CPU to the tool and the database server (yield.go).
//
// It returns errNoSpool, having started nothing, when there is no memfd;
// else w's error (a destError), or else cmd's.
func runSpooled(cmd *exec.Cmd, w io.Writer) error {
	fd, err := unix.MemfdCreate("dm-spool", unix.MFD_CLOEXEC)
	if err != nil {
		return errNoSpool
	}
	f := os.NewFile(uintptr(fd), "spool")
	defer f.Close()
	cmd.Stdout = f
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// Pdeathsig follows the thread that forked the tool, not the process:
	// that thread stays locked to this goroutine until the tool is gone.
	started, exited := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			exited <- cmd.Wait()
		}
	}()
	if err := <-started; err != nil {
		return err
	}
	r := &spoolReader{f: f, fd: fd, exited: exited, poll: time.NewTimer(spoolPoll), start: time.Now()}
	defer r.poll.Stop()
	copied := make(chan error, 1)
	go func() {
		// A thread whose policy the watcher changes is never unlocked: it
		// ends with this goroutine, and no other goroutine runs on it.
		tid := 0
		if canYield() {
			runtime.LockOSThread()
			tid = unix.Gettid()
		}
		stop, watched := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(watched)
			r.watch(cmd.Process, tid, stop)
		}()
		err := copyOut(w, r, spoolChunk)
		close(stop)
		<-watched // the watcher is done with the thread before it ends
		copied <- err
	}()
	if err := <-copied; err != nil {
		if !r.done.Load() {
			cmd.Process.Kill() // also when stopped
			<-exited
		}
		if err == r.err {
			return err
		}
		return destError{err}
	}
	return r.cerr
}

// spoolReader reads a spool from its start as the tool writes it; its end
// is the tool's exit.
type spoolReader struct {
	f       *os.File
	fd      int
	off     atomic.Int64 // bytes read
	punched int64        // bytes punched out of the file
	exited  <-chan error // the tool's exit
	done    atomic.Bool  // the tool has exited
	cerr    error        // its exit's error
	poll    *time.Timer
	start   time.Time // when the tool started, for its output's rate
	caught  bool      // the last read took all there was: wait before the next
	err     error     // the reader's own failure
}

// Read returns what the tool has written since the last read. Having
// taken all there was, it first waits for about spoolBatch more bytes at
// the tool's rate so far: each wake-up costs two context switches (the
// timer's and the locked thread's), dearer than copying what it lets
// through, and a read of a few KiB costs as many system calls down the
// line (normalizer, temporary file) as one of a MiB. The tool's exit
// ends any wait.
func (r *spoolReader) Read(p []byte) (int, error) {
	for {
		if r.caught && !r.done.Load() {
			r.caught = false
			r.wait(r.pace())
		}
		off := r.off.Load()
		n, err := r.f.ReadAt(p, off)
		if n > 0 {
			end := off + int64(n)
			r.off.Store(end)
			if end-r.punched >= spoolChunk {
				_ = unix.Fallocate(r.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, r.punched, end-r.punched)
				r.punched = end
			}
			r.caught = n < len(p)
			return n, nil
		}
		if err != nil && err != io.EOF {
			r.err = err
			return 0, err
		}
		if r.done.Load() { // read to the end after the tool exited: all of it
			return 0, io.EOF
		}
		r.wait(r.pace())
	}
}

// pace is how long the tool takes to write spoolBatch bytes at its rate
// so far, within spoolPoll and spoolPace.
func (r *spoolReader) pace() time.Duration {
	off := r.off.Load()
	if off <= 0 {
		return spoolPoll
	}
	d := time.Duration(float64(time.Since(r.start)) * spoolBatch / float64(off))
	return min(max(d, spoolPoll), spoolPace)
}

// wait waits for d or for the tool's exit.
func (r *spoolReader) wait(d time.Duration) {
	r.poll.Reset(d)
	select {
	case r.cerr = <-r.exited:
		r.done.Store(true)
		r.poll.Stop()
	case <-r.poll.C:
	}
}

// watch checks the backlog every spoolWatch until stop is closed. It
// stops the tool p while the backlog is over spoolHigh and continues it
// under spoolLow; when tid is not 0 it lets that thread (the copy's)
// yield as yieldRule says. It never leaves p stopped or the thread
// yielding.
func (r *spoolReader) watch(p *os.Process, tid int, stop <-chan struct{}) {
	tick := time.NewTicker(spoolWatch)
	defer tick.Stop()
	stopped, yielding := false, false
	defer func() {
		if stopped {
			_ = p.Signal(syscall.SIGCONT)
		}
		if yielding {
			_ = setYield(tid, false)
		}
	}()
	rule := yieldRule{lastOff: -1}
	for {
		var st unix.Stat_t
		if unix.Fstat(r.fd, &st) == nil {
			off := r.off.Load()
			backlog := st.Size - off
			switch {
			case !stopped && backlog > spoolHigh:
				stopped = p.Signal(syscall.SIGSTOP) == nil
			case stopped && backlog < spoolLow:
				stopped = p.Signal(syscall.SIGCONT) != nil
			}
			want := rule.check(off, backlog, r.done.Load())
			if want = want && tid != 0; want != yielding && setYield(tid, want) == nil {
				yielding = want
			}
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// yieldRule decides at each check whether the copy may yield: until its
// backlog reaches spoolUrgent, short of stopping the tool, or it has made
// no progress for spoolStarved checks in a row, or the tool has exited;
// from then on not until it has caught up.
type yieldRule struct {
	lastOff int64 // the bytes copied at the last check
	still   int   // checks in a row without progress while output waited
	urgent  bool
}

func (y *yieldRule) check(off, backlog int64, done bool) bool {
	if off == y.lastOff && backlog > 0 {
		y.still++
	} else {
		y.still = 0
	}
	y.lastOff = off
	switch {
	case done || backlog >= spoolUrgent || y.still >= spoolStarved:
		y.urgent = true
	case backlog < spoolChunk:
		y.urgent = false
	}
	return !y.urgent
}
