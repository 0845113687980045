package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Progress modes of --progress.
const (
	progressAuto = "auto" // a bar on a terminal, nothing otherwise
	progressNone = "none"
	progressJSON = "json" // one JSON object a line on stderr
)

// progressFlag is --progress: checked when parsed, so a bad value is a
// usage error before anything runs.
type progressFlag string

func (p *progressFlag) String() string { return string(*p) }
func (p *progressFlag) Type() string   { return "MODE" }
func (p *progressFlag) Set(s string) error {
	switch s {
	case progressAuto, progressNone, progressJSON:
		*p = progressFlag(s)
		return nil
	}
	return fmt.Errorf("use auto, none or json") // pflag names the flag and the value
}

const progressHelp = `Long operations (commit, checkout, reset, clone, push, pull, gc, verify)
show their progress on stderr as --progress says: auto (the default) draws a
bar with bytes, rate and ETA when stderr is a terminal and prints nothing
otherwise; none prints nothing; json prints one JSON object a line:
{"op":"commit","phase":"hashing","bytes":N,"total":N,"elapsed_ms":N}
(total 0: unknown; transfers add commit, index and commits), ending with a
line whose phase is "done" and whose bytes equal its total.`

// progressEvent is one line of --progress=json.
type progressEvent struct {
	Op        string           `json:"op"`
	Phase     string           `json:"phase"`
	Bytes     int64            `json:"bytes"`
	Total     int64            `json:"total"`
	ElapsedMS int64            `json:"elapsed_ms"`
	Commit    dotmesh.CommitID `json:"commit,omitempty"`
	Index     int              `json:"index,omitempty"`
	Commits   int              `json:"commits,omitempty"`
}

// progress shows one operation's progress: a self-overwriting line on a
// terminal (redrawn while a phase without bytes runs, so it never looks
// frozen), JSON lines, or nothing.
type progress struct {
	w     io.Writer
	op    string
	mode  string // progressAuto (drawing), progressJSON, or progressNone
	start time.Time

	mu         sync.Mutex
	last       dotmesh.Progress
	seen       bool
	phaseStart time.Time
	maxBytes   int64
	drawn      bool
	stop       chan struct{}
	stopped    chan struct{}
}

// newProgress returns the progress display of op: quiet (a command's -q,
// or output meant for programs: --json, -H) turns the bar off, not the
// JSON lines asked for.
func (a *app) newProgress(op string, quiet bool) *progress {
	mode := string(a.progress)
	switch mode {
	case "", progressAuto:
		mode = progressNone
		if f, ok := a.io.Stderr.(*os.File); ok && !quiet && !a.jsonOut && !a.scripting && isTerminal(int(f.Fd())) {
			mode = progressAuto
		}
	}
	return &progress{w: a.io.Stderr, op: op, mode: mode, start: time.Now()}
}

// context returns ctx asking the node for progress when it is shown.
func (p *progress) context(ctx context.Context) context.Context {
	if p.mode == progressNone {
		return ctx
	}
	return dotmesh.WithProgress(ctx, p.update)
}

// moved reports whether any data had moved (a transfer interrupted after
// that resumes when run again).
func (p *progress) moved() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxBytes > 0
}

func (p *progress) update(pr dotmesh.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.seen || pr.Phase != p.last.Phase {
		p.phaseStart = time.Now()
	}
	p.last, p.seen = pr, true
	p.maxBytes = max(p.maxBytes, pr.Bytes)
	switch p.mode {
	case progressJSON:
		p.json(pr, pr.Phase)
	case progressAuto:
		p.draw()
		if p.stop == nil {
			p.stop, p.stopped = make(chan struct{}), make(chan struct{})
			go p.tick(p.stop, p.stopped)
		}
	}
}

// tick redraws the line every half second: elapsed time moves on during
// a phase that reports no bytes (a database dump's end, a receiver's
// finish step).
func (p *progress) tick(stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.draw()
			p.mu.Unlock()
		}
	}
}

func (p *progress) json(pr dotmesh.Progress, phase string) {
	if phase == "" {
		phase = "sending"
	}
	ev := progressEvent{Op: p.op, Phase: phase, Bytes: pr.Bytes, Total: pr.Total, ElapsedMS: time.Since(p.start).Milliseconds(),
		Commit: pr.Commit, Index: pr.Index, Commits: pr.Commits}
	b, _ := json.Marshal(ev)
	fmt.Fprintf(p.w, "%s\n", b)
}

// draw writes the line for p.last; p.mu is held.
func (p *progress) draw() {
	pr := p.last
	line := p.op
	if pr.Commits > 0 {
		line += fmt.Sprintf(" commit %d/%d", pr.Index, pr.Commits)
	}
	if pr.Phase != "" {
		line += " " + pr.Phase
	}
	el := time.Since(p.phaseStart).Seconds()
	if pr.Commits > 0 && pr.Phase == "" {
		el = time.Since(p.start).Seconds() // the transfer's bytes span all commits
	}
	rate := 0.0
	if el > 0 {
		rate = float64(pr.Bytes) / el
	}
	switch {
	case pr.Bytes > 0 || pr.Total > 0:
		line += fmt.Sprintf("  %s  %s/s", HumanSize(pr.Bytes), HumanSize(int64(rate)))
	default:
		line += fmt.Sprintf("  %s", time.Duration(el*float64(time.Second)).Round(100*time.Millisecond))
	}
	if pr.Total > 0 && pr.Bytes <= pr.Total {
		frac := float64(pr.Bytes) / float64(pr.Total)
		const width = 24
		n := int(frac * width)
		line = fmt.Sprintf("[%s%s] %3.0f%% ", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100) + line
		if rate > 0 && pr.Bytes < pr.Total {
			eta := time.Duration(float64(pr.Total-pr.Bytes) / rate * float64(time.Second))
			line += "  ETA " + eta.Round(time.Second).String()
		}
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

// done ends the display: the bar is cleared (the command's own message
// follows), a JSON stream ends with its "done" line when ok.
func (p *progress) done(ok bool) {
	p.mu.Lock()
	stop, stopped := p.stop, p.stopped
	p.stop = nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-stopped
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.mode == progressJSON && ok:
		p.json(dotmesh.Progress{Bytes: p.maxBytes, Total: p.maxBytes, Index: p.last.Commits, Commits: p.last.Commits}, "done")
	case p.drawn:
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// withProgress runs a long call of op with its progress shown.
func withProgress[T any](a *app, ctx context.Context, op string, call func(context.Context) (T, error)) (T, error) {
	p := a.newProgress(op, false)
	v, err := call(p.context(ctx))
	p.done(err == nil)
	return v, err
}
