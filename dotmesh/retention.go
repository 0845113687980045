package dotmesh

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KeepGrid is a retention grid, as restic's `forget --keep-last/-hourly/
// -daily/-weekly/-monthly/-yearly` has it: Last keeps the newest N
// commits; each calendar field keeps, per hour (day, ISO week, month,
// year), the newest commit of that period, for the N newest periods that
// have one. A commit kept by any field stays. When a calendar field has
// counts left after the oldest commit, that oldest commit is kept too
// (restic does so, to keep the history as long as the grid allows).
// Periods are UTC calendar periods. The zero grid keeps everything.
type KeepGrid struct {
	Last    int `json:"last,omitempty"`
	Hourly  int `json:"hourly,omitempty"`
	Daily   int `json:"daily,omitempty"`
	Weekly  int `json:"weekly,omitempty"`
	Monthly int `json:"monthly,omitempty"`
	Yearly  int `json:"yearly,omitempty"`
}

// maxKeep bounds one field of a grid: far beyond any real history, low
// enough that no count overflows.
const maxKeep = 1_000_000

// gridFields are the grid's fields in the order ParseKeepGrid names them.
var gridFields = []string{"last", "hourly", "daily", "weekly", "monthly", "yearly"}

func (g *KeepGrid) field(name string) *int {
	switch name {
	case "last":
		return &g.Last
	case "hourly":
		return &g.Hourly
	case "daily":
		return &g.Daily
	case "weekly":
		return &g.Weekly
	case "monthly":
		return &g.Monthly
	case "yearly":
		return &g.Yearly
	}
	return nil
}

// IsZero reports whether the grid keeps everything (no field set).
func (g KeepGrid) IsZero() bool { return g == KeepGrid{} }

// String writes the grid as ParseKeepGrid reads it ("" for the zero grid).
func (g KeepGrid) String() string {
	var parts []string
	for _, f := range gridFields {
		if v := *g.field(f); v > 0 {
			parts = append(parts, f+"="+strconv.Itoa(v))
		}
	}
	return strings.Join(parts, ",")
}

// Validate checks every field is within 0..1000000.
func (g KeepGrid) Validate() error {
	for _, f := range gridFields {
		if v := *g.field(f); v < 0 || v > maxKeep {
			return fmt.Errorf("%w: keep %s=%d: the count must be 0 to %d", ErrInvalidArgument, f, v, maxKeep)
		}
	}
	return nil
}

// ParseKeepGrid parses a grid written FIELD=N,FIELD=N (fields last,
// hourly, daily, weekly, monthly, yearly; each at most once), e.g.
// "last=4,hourly=24,daily=7,weekly=4,monthly=12". It must keep something:
// a grid of zeros would remove every commit it applies to.
func ParseKeepGrid(s string) (KeepGrid, error) {
	var g KeepGrid
	if strings.TrimSpace(s) == "" {
		return g, fmt.Errorf("%w: the keep grid is empty; write FIELD=N,... with fields %s", ErrInvalidArgument, strings.Join(gridFields, ", "))
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return KeepGrid{}, fmt.Errorf("%w: keep grid part %q is not FIELD=N (fields %s)", ErrInvalidArgument, truncate(part), strings.Join(gridFields, ", "))
		}
		p := g.field(k)
		if p == nil {
			return KeepGrid{}, fmt.Errorf("%w: keep grid field %q is unknown; use %s", ErrInvalidArgument, truncate(k), strings.Join(gridFields, ", "))
		}
		if seen[k] {
			return KeepGrid{}, fmt.Errorf("%w: keep grid field %s is given twice", ErrInvalidArgument, k)
		}
		seen[k] = true
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxKeep {
			return KeepGrid{}, fmt.Errorf("%w: keep %s=%q: the count must be a whole number from 0 to %d", ErrInvalidArgument, k, truncate(v), maxKeep)
		}
		*p = n
	}
	if g.IsZero() {
		return KeepGrid{}, fmt.Errorf("%w: keep grid %q keeps nothing; give a count above 0 (or no grid, to keep every commit)", ErrInvalidArgument, truncate(s))
	}
	return g, nil
}

// Keep applies the grid to times, sorted newest first, and returns for
// each the fields that keep it (empty: it goes). The zero grid keeps all.
func (g KeepGrid) Keep(times []time.Time) [][]string {
	out := make([][]string, len(times))
	if g.IsZero() {
		for i := range out {
			out[i] = []string{"all"}
		}
		return out
	}
	type bucket struct {
		name  string
		count int
		of    func(t time.Time, i int) int
		last  int
	}
	buckets := []bucket{
		{"last", g.Last, func(_ time.Time, i int) int { return i }, -1},
		{"hourly", g.Hourly, func(t time.Time, _ int) int { y, m, d := t.Date(); return ((y*100+int(m))*100+d)*100 + t.Hour() }, -1},
		{"daily", g.Daily, func(t time.Time, _ int) int { y, m, d := t.Date(); return (y*100+int(m))*100 + d }, -1},
		{"weekly", g.Weekly, func(t time.Time, _ int) int { y, w := t.ISOWeek(); return y*100 + w }, -1},
		{"monthly", g.Monthly, func(t time.Time, _ int) int { y, m, _ := t.Date(); return y*100 + int(m) }, -1},
		{"yearly", g.Yearly, func(t time.Time, _ int) int { return t.Year() }, -1},
	}
	for i, t := range times {
		t = t.UTC()
		for b := range buckets {
			bk := &buckets[b]
			if bk.count <= 0 {
				continue
			}
			v := bk.of(t, i)
			// Newest in a new period; or the oldest commit while a
			// calendar field has counts left (restic's rule).
			if v != bk.last || (i == len(times)-1 && bk.name != "last") {
				bk.last = v
				bk.count--
				out[i] = append(out[i], bk.name)
			}
		}
	}
	return out
}

// gridDrops returns the commits grid removes from the branches (only the
// one named only, when set): per branch, of the commits a schedule made
// in its history, newest first, those the grid does not keep, that are
// not its head and not in another branch's history.
func gridDrops(commits map[CommitID]*Commit, branches []*Branch, grid KeepGrid, only string) map[CommitID]bool {
	drop := map[CommitID]bool{}
	if grid.IsZero() {
		return drop
	}
	for _, b := range branches {
		if only != "" && b.Name != only {
			continue
		}
		others := map[CommitID]bool{}
		for _, o := range branches {
			if o != b {
				for _, c := range ancestry(commits, o.Head) {
					others[c.ID] = true
				}
			}
		}
		var sched []*Commit
		for _, c := range ancestry(commits, b.Head) {
			if c.Metadata[MetaSchedule] != "" {
				sched = append(sched, c)
			}
		}
		times := make([]time.Time, len(sched))
		for i, c := range sched {
			times[i] = c.Time
		}
		for i, why := range grid.Keep(times) {
			if c := sched[i]; len(why) == 0 && c.ID != b.Head && !others[c.ID] {
				drop[c.ID] = true
			}
		}
	}
	return drop
}

// relinkOps are the writes that keep a history one chain after a grid
// drops commits from its middle: a kept commit whose parent goes names
// its nearest kept ancestor instead. Where none is left (the history's
// start went), it is marked Pruned as gc --keep marks it.
func relinkOps(commits map[CommitID]*Commit, drop []*Commit) []Op {
	dropped := make(map[CommitID]bool, len(drop))
	for _, c := range drop {
		dropped[c.ID] = true
	}
	var ops []Op
	for _, c := range commits {
		if dropped[c.ID] || c.Parent == "" || !dropped[c.Parent] {
			continue
		}
		p := c.Parent
		for dropped[p] {
			p = commits[p].Parent
		}
		m := *c
		if p != "" && commits[p] != nil {
			m.Parent = p
		} else {
			m.Pruned = true
		}
		ops = append(ops, PutOp(commitKey(c.Dot, c.ID), encode(&m)))
	}
	return ops
}

func gridText(g *KeepGrid) string {
	if g == nil {
		return ""
	}
	return g.String()
}
