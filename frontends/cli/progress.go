package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// progressBar draws one self-overwriting line on a terminal: commit n/m,
// bytes, rate and ETA (when the total is known). Off a terminal it prints
// nothing, so logs and scripts stay clean.
type progressBar struct {
	w     io.Writer
	op    string
	on    bool
	start time.Time
	drawn bool
}

func newProgressBar(w io.Writer, op string, quiet bool) *progressBar {
	on := false
	if f, ok := w.(*os.File); ok && !quiet {
		on = isTerminal(int(f.Fd()))
	}
	return &progressBar{w: w, op: op, on: on, start: time.Now()}
}

func (p *progressBar) update(pr dotmesh.Progress) {
	if !p.on {
		return
	}
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(pr.Bytes) / el
	}
	line := fmt.Sprintf("%s commit %d/%d  %s  %s/s", p.op, pr.Index, pr.Commits, HumanSize(pr.Bytes), HumanSize(int64(rate)))
	if pr.Total > 0 && pr.Bytes <= pr.Total {
		frac := float64(pr.Bytes) / float64(pr.Total)
		const width = 24
		n := int(frac * width)
		line = fmt.Sprintf("[%s%s] %3.0f%% ", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100) + line
		if rate > 0 {
			eta := time.Duration(float64(pr.Total-pr.Bytes) / rate * float64(time.Second))
			line += "  ETA " + eta.Round(time.Second).String()
		}
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
