package dotmesh

import (
	"context"
	"io"
	"sync"
	"time"
)

// Long operations (commit, reset, checkout, gc, verify, a transfer's
// finish step) report how far they are through a function carried in
// their context, so that the engine and its backends need to know no
// frontend: the server streams the reports to a client that asks, a
// library user prints them as it likes.

type progressKey struct{}

// WithProgress returns a context whose long operations report their
// progress to fn. fn may be called from several goroutines, one call at
// a time, at most every ProgressInterval per phase besides a phase's
// first and last report; it must return quickly.
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	if fn == nil {
		return ctx
	}
	var mu sync.Mutex
	return context.WithValue(ctx, progressKey{}, func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		fn(p)
	})
}

// ProgressFunc returns the function WithProgress put in ctx, nil when
// none.
func ProgressFunc(ctx context.Context) func(Progress) {
	fn, _ := ctx.Value(progressKey{}).(func(Progress))
	return fn
}

// ProgressInterval is the least time between two reports of one phase.
const ProgressInterval = 100 * time.Millisecond

// ProgressMeter counts the bytes of one phase of a long operation and
// reports them to the context's progress function. Its methods are safe
// for concurrent use; a nil *ProgressMeter (no function in the context)
// does nothing, so callers need not check.
type ProgressMeter struct {
	fn    func(Progress)
	phase string

	mu    sync.Mutex
	bytes int64
	total int64
	last  time.Time
}

// StartProgress reports the start of phase (total bytes, 0 when unknown)
// and returns its meter; nil when ctx carries no progress function.
func StartProgress(ctx context.Context, phase string, total int64) *ProgressMeter {
	fn := ProgressFunc(ctx)
	if fn == nil {
		return nil
	}
	m := &ProgressMeter{fn: fn, phase: phase, total: total, last: time.Now()}
	fn(Progress{Phase: phase, Total: total})
	return m
}

// ReportPhase reports that phase began, without counting bytes (a step
// whose length is unknown, such as a transfer's finish).
func ReportPhase(ctx context.Context, phase string) {
	if fn := ProgressFunc(ctx); fn != nil {
		fn(Progress{Phase: phase})
	}
}

// Add counts n more bytes done.
func (m *ProgressMeter) Add(n int64) {
	if m == nil || n == 0 {
		return
	}
	m.mu.Lock()
	m.bytes += n
	now := time.Now()
	if now.Sub(m.last) < ProgressInterval {
		m.mu.Unlock()
		return
	}
	m.last = now
	p := m.snapshot()
	m.mu.Unlock()
	m.fn(p)
}

// Done reports the phase's final count; when the total was known, the
// count is the total (files that shrank while read still end at 100%).
func (m *ProgressMeter) Done() {
	if m == nil {
		return
	}
	m.mu.Lock()
	if m.total > 0 && m.bytes < m.total {
		m.bytes = m.total
	}
	if m.total == 0 {
		m.total = m.bytes
	}
	p := m.snapshot()
	m.mu.Unlock()
	m.fn(p)
}

func (m *ProgressMeter) snapshot() Progress {
	b := m.bytes
	if m.total > 0 && b > m.total {
		b = m.total // a file grew while read: the bar never passes 100%
	}
	return Progress{Phase: m.phase, Bytes: b, Total: m.total}
}

// Writer returns w counting what is written through it.
func (m *ProgressMeter) Writer(w io.Writer) io.Writer {
	if m == nil {
		return w
	}
	return countedWriter{w, m.Add}
}

// Reader returns r counting what is read through it.
func (m *ProgressMeter) Reader(r io.Reader) io.Reader {
	if m == nil {
		return r
	}
	return countedReader{r, m.Add}
}

// PhaseFinishing is a transfer's last step: the receiver checks the
// commits, moves its branch and restores its working state.
const PhaseFinishing = "finishing"
