package dotmesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Policies: a dot, or every dot a label selector chooses, gets a schedule
// (commit its current branch every so often) and a retention grid
// (KeepGrid) applied after each scheduled commit. They are kept in the
// registry, so a cluster's nodes share them, and the node whose branch it
// is runs them (see schedule.go). A dot's own policy wins over a
// selector's; of several selectors that choose a dot, the oldest wins.

// Interval is a policy's period. It reads and writes as ParseEvery does
// ("15m", "1h30m", "1d").
type Interval time.Duration

// Limits of a policy's period.
const (
	MinEvery = time.Second
	MaxEvery = 366 * 24 * time.Hour
)

// ParseEvery parses a period: a Go duration ("90s", "15m", "1h30m") or
// whole days or weeks ("1d", "2w"), from one second to 366 days.
func ParseEvery(s string) (Interval, error) {
	d, err := parseInterval(s)
	if err != nil {
		return 0, err
	}
	if d < MinEvery || d > MaxEvery {
		return 0, fmt.Errorf("%w: period %q is out of range; it must be from 1s to 366d", ErrInvalidArgument, truncate(s))
	}
	return Interval(d), nil
}

// parseInterval reads a period without checking its range.
func parseInterval(s string) (time.Duration, error) {
	if n, unit, ok := wholeUnit(s); ok {
		if n > int64(MaxEvery/unit) {
			return MaxEvery + 1, nil
		}
		return time.Duration(n) * unit, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: period %q is not a duration; write e.g. 30s, 15m, 1h30m, 1d or 1w", ErrInvalidArgument, truncate(s))
	}
	return d, nil
}

// wholeUnit reads "Nd" and "Nw".
func wholeUnit(s string) (int64, time.Duration, bool) {
	if len(s) < 2 {
		return 0, 0, false
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'd':
		unit = 24 * time.Hour
	case 'w':
		unit = 7 * 24 * time.Hour
	default:
		return 0, 0, false
	}
	digits := s[:len(s)-1]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, 0, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		n = 1 << 62 // too many digits: out of range
	}
	return n, unit, true
}

// String writes the period as ParseEvery reads it, shortest first.
func (i Interval) String() string {
	d := time.Duration(i)
	day := 24 * time.Hour
	switch {
	case d > 0 && d%(7*day) == 0:
		return strconv.FormatInt(int64(d/(7*day)), 10) + "w"
	case d > 0 && d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (i Interval) MarshalJSON() ([]byte, error) { return json.Marshal(i.String()) }

func (i *Interval) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: a period is a string such as \"15m\"", ErrInvalidArgument)
	}
	v, err := parseInterval(s) // Policy.Validate checks the range
	if err != nil {
		return err
	}
	*i = Interval(v)
	return nil
}

// Policy is a schedule and a retention grid for one dot or for the dots a
// selector chooses.
type Policy struct {
	// Exactly one of Dot and Selector says what the policy is for.
	Dot      *DotName  `json:"dot,omitempty"`
	Selector *Selector `json:"selector,omitempty"`
	// Every is how often the dot's current branch is committed.
	Every Interval `json:"every"`
	// Keep prunes the branch's scheduled commits after each scheduled
	// commit; the zero grid keeps them all.
	Keep    KeepGrid  `json:"keep"`
	Created time.Time `json:"created"`
	By      string    `json:"by,omitempty"` // who set it

	DotID DotID `json:"dot_id,omitempty"` // the registry's link; Dot is read from it
}

// ID names the policy in messages and in the MetaSchedule metadata of
// the commits it makes: "dot:NS/NAME" or "selector:" and the selector.
func (p *Policy) ID() string {
	if p.Dot != nil {
		return "dot:" + p.Dot.String()
	}
	if p.Selector != nil {
		return "selector:" + p.Selector.String()
	}
	return ""
}

// canonicalSelector sorts and de-duplicates a selector's requirements and
// checks them: equal selectors have one text, so one record.
func canonicalSelector(s Selector) (Selector, string, error) {
	if s.Namespace == "" && len(s.Labels) == 0 {
		return Selector{}, "", fmt.Errorf("%w: a policy's selector needs a namespace or a label (a policy for every dot is not taken)", ErrInvalidArgument)
	}
	var texts []string
	for _, r := range s.Labels {
		texts = append(texts, r.String())
	}
	slices.Sort(texts)
	texts = slices.Compact(texts)
	out, err := ParseSelector(s.Namespace, texts)
	if err != nil {
		return Selector{}, "", err
	}
	return out, out.Namespace + "\x00" + strings.Join(texts, "\x00"), nil
}

// Validate checks the policy's target, period and grid.
func (p *Policy) Validate() error {
	if (p.Dot == nil) == (p.Selector == nil) {
		return &InvalidOptionError{Option: "Policy.Dot", Problem: "a policy is for one dot or for a selector: give exactly one"}
	}
	if p.Dot != nil {
		if err := p.Dot.Validate(); err != nil {
			return err
		}
	} else if _, _, err := canonicalSelector(*p.Selector); err != nil {
		return err
	}
	if d := time.Duration(p.Every); d < MinEvery || d > MaxEvery {
		return &InvalidOptionError{Option: "Policy.Every", Problem: "the period must be from 1s to 366d"}
	}
	return p.Keep.Validate()
}

// Policies sets, lists and runs the node's policies.
type Policies struct{ n *Node }

// Policies returns the handle of the node's schedules and retention.
func (n *Node) Policies() *Policies { return &Policies{n: n} }

// Set stores p (replacing the policy of the same dot or selector) and
// returns it as stored.
func (ps *Policies) Set(ctx context.Context, p Policy) (*Policy, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	n := ps.n
	p.Created = n.now().UTC()
	var key string
	if p.Dot != nil {
		d, _, err := n.reg.dotByName(ctx, *p.Dot)
		if err != nil {
			return nil, err
		}
		p.DotID = d.ID
		key = dotPolicyKey(d.ID)
	} else {
		sel, text, _ := canonicalSelector(*p.Selector) // checked by Validate
		p.Selector, p.DotID = &sel, ""
		key = selectorPolicyKey(text)
	}
	if _, err := n.store.Put(ctx, key, encode(&p)); err != nil {
		return nil, err
	}
	n.log.InfoContext(ctx, "policy set", "policy", p.ID(), "every", p.Every.String(), "keep", p.Keep.String())
	n.sched.poke()
	return &p, nil
}

// RemoveDot removes dot's own policy (not a selector's that chooses it).
func (ps *Policies) RemoveDot(ctx context.Context, dot DotName) error {
	d, _, err := ps.n.reg.dotByName(ctx, dot)
	if err != nil {
		return err
	}
	if err := ps.remove(ctx, dotPolicyKey(d.ID), "dot "+dot.String()); err != nil {
		return err
	}
	ps.n.forgetDot(ctx, d.ID) // its runs too: a new policy starts afresh
	return nil
}

// RemoveSelector removes the policy of sel.
func (ps *Policies) RemoveSelector(ctx context.Context, sel Selector) error {
	_, text, err := canonicalSelector(sel)
	if err != nil {
		return err
	}
	return ps.remove(ctx, selectorPolicyKey(text), "selector "+sel.String())
}

func (ps *Policies) remove(ctx context.Context, key, what string) error {
	n := ps.n
	kv, err := n.store.Get(ctx, key)
	if err != nil {
		return notFound(err, "%s has no policy", what)
	}
	if _, err := n.store.Txn(ctx, []Condition{IfRevision(key, kv.Revision)}, []Op{DeleteOp(key)}); err != nil {
		return err
	}
	n.log.InfoContext(ctx, "policy removed", "policy", what)
	return nil
}

// policySet is every policy of the registry, read once for a pass.
type policySet struct {
	dots      map[DotID]*Policy
	selectors []*Policy // oldest first
}

func (ps *Policies) read(ctx context.Context) (*policySet, error) {
	kvs, err := ps.n.store.List(ctx, policiesPrefix)
	if err != nil {
		return nil, err
	}
	set := &policySet{dots: map[DotID]*Policy{}}
	for _, kv := range kvs {
		p, err := decode[Policy](kv)
		if err != nil {
			return nil, err
		}
		if p.DotID != "" {
			set.dots[p.DotID] = p
		} else if p.Selector != nil {
			set.selectors = append(set.selectors, p)
		}
	}
	sort.SliceStable(set.selectors, func(i, j int) bool { return set.selectors[i].Created.Before(set.selectors[j].Created) })
	return set, nil
}

// of returns the policy that applies to d, or nil.
func (set *policySet) of(d *Dot) *Policy {
	if p := set.dots[d.ID]; p != nil {
		name := d.DotName()
		p.Dot = &name // the dot's name now
		return p
	}
	for _, p := range set.selectors {
		if p.Selector.Matches(d) {
			return p
		}
	}
	return nil
}

// List returns every policy: the dots' (by name), then the selectors'
// (oldest first). The policies of deleted dots are left out.
func (ps *Policies) List(ctx context.Context) ([]Policy, error) {
	set, err := ps.read(ctx)
	if err != nil {
		return nil, err
	}
	dots, err := ps.n.reg.dots(ctx)
	if err != nil {
		return nil, err
	}
	out := []Policy{}
	for _, d := range dots {
		if p := set.dots[d.ID]; p != nil {
			name := d.DotName()
			p.Dot = &name
			out = append(out, *p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dot.String() < out[j].Dot.String() })
	for _, p := range set.selectors {
		out = append(out, *p)
	}
	return out, nil
}

// PolicyStatus is what applies to one dot, and how its schedule ran.
type PolicyStatus struct {
	Dot    DotName `json:"dot"`
	Branch string  `json:"branch"` // the current branch, which the schedule commits
	// Policy is the policy that applies (the dot's own, or a
	// selector's); nil when none does.
	Policy *Policy `json:"policy"`
	// Last is the branch's last scheduled run; nil before the first.
	Last *ScheduleState `json:"last,omitempty"`
	// Next is when the next run is due (a past time: at the next pass).
	Next time.Time `json:"next,omitzero"`
}

// Status returns the policy that applies to dot and its schedule's state.
func (ps *Policies) Status(ctx context.Context, dot DotName) (*PolicyStatus, error) {
	d, _, err := ps.n.reg.dotByName(ctx, dot)
	if err != nil {
		return nil, err
	}
	set, err := ps.read(ctx)
	if err != nil {
		return nil, err
	}
	st := &PolicyStatus{Dot: dot, Branch: d.Current, Policy: set.of(d)}
	if st.Last, err = ps.n.scheduleState(ctx, d.ID, d.Current); err != nil {
		return nil, err
	}
	if st.Policy != nil {
		st.Next = ps.n.now().UTC()
		if st.Last != nil {
			st.Next = st.Last.Time.Add(time.Duration(st.Policy.Every))
		}
	}
	return st, nil
}

// PruneOptions tune Policies.Prune.
type PruneOptions struct {
	// Grid replaces the dot's policy's grid (to see what another grid
	// would remove); nil uses the policy's.
	Grid   *KeepGrid
	DryRun bool
}

// Prune applies the retention grid of dot's policy (or opts.Grid) to the
// scheduled commits of each of its branches now, through GC.
func (ps *Policies) Prune(ctx context.Context, dot DotName, opts PruneOptions) (*GCResult, error) {
	grid := opts.Grid
	if grid == nil {
		st, err := ps.Status(ctx, dot)
		if err != nil {
			return nil, err
		}
		if st.Policy == nil {
			return nil, fmt.Errorf("%w: dot %s has no policy, so no grid to prune by", ErrNotFound, dot)
		}
		grid = &st.Policy.Keep
	}
	if grid.IsZero() {
		return nil, fmt.Errorf("%w: the policy of %s keeps every commit (no grid); nothing to prune by", ErrInvalidArgument, dot)
	}
	return ps.n.GC(ctx, GCOptions{Dot: &dot, Grid: grid, DryRun: opts.DryRun})
}

// forgetDot removes the policy and schedule records of a dot: one that
// is gone (ids are never reused, so they would only lie about), or whose
// policy was removed.
func (n *Node) forgetDot(ctx context.Context, id DotID) {
	keys := []string{dotPolicyKey(id)}
	if kvs, err := n.store.List(ctx, scheduleDotPrefix(id)); err == nil {
		for _, kv := range kvs {
			keys = append(keys, kv.Key)
		}
	}
	if err := n.deleteKeys(ctx, keys); err != nil && !errors.Is(err, ErrNotFound) {
		n.log.WarnContext(ctx, "removing the policy of a deleted dot", "dot", id, "err", err)
	}
}
