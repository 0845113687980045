package torture

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// obsCommit is one commit of a branch's log as a node shows it.
type obsCommit struct {
	ID      string `json:"id"`
	Parent  string `json:"parent"`
	Message string `json:"message"`
}

type obsBranch struct {
	Head string
	Log  []obsCommit // newest first
	Tree string      // treeHash of the working tree
}

func (b *obsBranch) has(id string) bool {
	return slices.ContainsFunc(b.Log, func(c obsCommit) bool { return c.ID == id })
}

type obsDot struct {
	Current  string
	Branches map[string]*obsBranch
}

// observe reads what node i shows of every dot it lists or the model
// expects: branches, heads, logs and working trees.
func (e *Engine) observe(i int) (map[string]*obsDot, error) {
	var list []struct {
		Name string `json:"name"`
	}
	if err := e.dmJSON(i, &list, "list"); err != nil {
		return nil, err
	}
	names := e.m.dots(i)
	for _, it := range list {
		name := strings.TrimPrefix(it.Name, "admin/")
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	listed := map[string]bool{}
	for _, it := range list {
		listed[strings.TrimPrefix(it.Name, "admin/")] = true
	}
	out := map[string]*obsDot{}
	for _, dot := range names {
		if !listed[dot] {
			continue
		}
		cur, heads, err := e.heads(i, dot)
		if err != nil {
			return nil, err
		}
		d := &obsDot{Current: cur, Branches: map[string]*obsBranch{}}
		for _, bn := range sortedKeys(heads) {
			b := &obsBranch{Head: heads[bn]}
			if err := e.dmJSON(i, &b.Log, "log", "--dot", dot, "--branch", bn); err != nil {
				return nil, err
			}
			if len(b.Log) > 0 && b.Log[0].ID != b.Head {
				return nil, violationf("node %s dot %s branch %s: dm branch says head %s, dm log starts at %s", e.nodes[i].name, dot, bn, short(b.Head), short(b.Log[0].ID))
			}
			dir, err := e.path(i, dot+"@"+bn+".__root__")
			if err != nil {
				return nil, err
			}
			if b.Tree, err = treeHash(dir); err != nil {
				return nil, fmt.Errorf("reading the working tree of %s@%s on %s: %w", dot, bn, e.nodes[i].name, err)
			}
			d.Branches[bn] = b
		}
		out[dot] = d
	}
	return out, nil
}

// checkCommits checks every commit a node shows: made by this run (a
// message it asked for), with the same message under the same id
// everywhere. It learns ids it did not know (commits cut off by a kill,
// whose id was never printed).
func (m *model) checkCommits(where string, d *obsDot) []string {
	var bad []string
	for bn, b := range d.Branches {
		for _, c := range b.Log {
			if _, ok := m.msgTree[c.Message]; !ok {
				bad = append(bad, fmt.Sprintf("%s@%s: commit %s %q was never made by this run", where, bn, short(c.ID), c.Message))
				continue
			}
			if msg, ok := m.idMsg[c.ID]; ok && msg != c.Message {
				bad = append(bad, fmt.Sprintf("%s@%s: commit %s has message %q here, %q elsewhere", where, bn, short(c.ID), c.Message, msg))
				continue
			}
			m.idMsg[c.ID] = c.Message
		}
	}
	return bad
}

// matchDot compares what a node shows of a dot with one state the model
// allows; it returns what differs.
func (m *model) matchDot(want *dotModel, got *obsDot) []string {
	switch {
	case want == nil && got == nil:
		return nil
	case want == nil:
		return []string{"the dot is listed but was never acknowledged (a partial transfer or create is visible)"}
	case got == nil:
		return []string{"the dot is missing"}
	}
	var bad []string
	if want.Current != "" && got.Current != want.Current {
		bad = append(bad, fmt.Sprintf("current branch is %q, want %q", got.Current, want.Current))
	}
	for _, name := range sortedKeys(want.Branches) {
		wb, gb := want.Branches[name], got.Branches[name]
		if gb == nil {
			bad = append(bad, fmt.Sprintf("branch %s is missing", name))
			continue
		}
		for _, p := range m.matchBranch(wb, gb) {
			bad = append(bad, "branch "+name+": "+p)
		}
	}
	for _, name := range sortedKeys(got.Branches) {
		if _, ok := want.Branches[name]; ok {
			continue
		}
		if want.NewBranchOK == nil || !want.NewBranchOK(name) {
			bad = append(bad, fmt.Sprintf("branch %s exists but was never acknowledged", name))
		} else if gb := got.Branches[name]; gb.Tree != m.treeOf(gb.Head) {
			bad = append(bad, fmt.Sprintf("new branch %s: working tree %s is not its head %s's %s", name, gb.Tree, short(gb.Head), m.treeOf(gb.Head)))
		}
	}
	return bad
}

func (m *model) matchBranch(wb *branchModel, gb *obsBranch) []string {
	var bad []string
	if wb.HeadMsg != "" {
		if len(gb.Log) == 0 || gb.Log[0].Message != wb.HeadMsg || gb.Log[0].Parent != wb.Head {
			bad = append(bad, fmt.Sprintf("head %s is not the cut-off commit %q on %s", short(gb.Head), wb.HeadMsg, short(wb.Head)))
		}
	} else if gb.Head != wb.Head {
		bad = append(bad, fmt.Sprintf("head is %s, want %s", short(gb.Head), short(wb.Head)))
	}
	var missing []string
	for _, id := range wb.Must {
		if !gb.has(id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		bad = append(bad, fmt.Sprintf("acknowledged commits %s are missing from the log", shortList(missing)))
	}
	if gb.Tree != wb.Tree {
		bad = append(bad, fmt.Sprintf("working tree %s%s is neither its committed state nor the changes written (want %s)", gb.Tree, m.whose(gb.Tree), wb.Tree))
	}
	return bad
}

// whose names the commits whose tree is tree, for reports.
func (m *model) whose(tree string) string {
	var ids []string
	for id, msg := range m.idMsg {
		if m.msgTree[msg] == tree {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	sort.Strings(ids)
	return " (the tree of commit " + strings.Join(ids, ", ") + ")"
}

// adopt turns the state found into the model's certain state for a dot
// whose state the candidate want allowed.
func adopt(want *dotModel, got *obsDot) *dotModel {
	if got == nil {
		return nil
	}
	d := &dotModel{Current: got.Current, Branches: map[string]*branchModel{}}
	for name, gb := range got.Branches {
		b := &branchModel{Head: gb.Head, Tree: gb.Tree}
		if wb := want.Branches[name]; wb != nil {
			b.Must = slices.Clone(wb.Must)
			if wb.HeadMsg != "" {
				b.Must = append([]string{gb.Head}, b.Must...)
			}
		}
		d.Branches[name] = b
	}
	return d
}

// checkNode compares node i with the model: every dot certain or one of
// its allowed states. States of cut-off operations are resolved here.
func (e *Engine) checkNode(i int) error {
	obs, err := e.observe(i)
	if err != nil {
		return err
	}
	m, name := e.m, e.nodes[i].name
	var bad []string
	for _, dot := range sortedKeys(obs) {
		bad = append(bad, m.checkCommits(name+" "+dot, obs[dot])...)
	}
	for _, dot := range sortedKeys(obs) {
		if _, ok := m.nodes[i][dot]; !ok && m.uncertain[i][dot] == nil {
			bad = append(bad, fmt.Sprintf("%s: dot %s is listed but was never acknowledged (a partial transfer or create is visible)", name, dot))
		}
	}
	for _, dot := range sortedKeys(m.nodes[i]) {
		for _, p := range m.matchDot(m.nodes[i][dot], obs[dot]) {
			bad = append(bad, fmt.Sprintf("%s dot %s: %s", name, dot, p))
		}
	}
	for _, dot := range sortedKeys(m.uncertain[i]) {
		cands := m.uncertain[i][dot]
		var why []string
		found := false
		for k, c := range cands {
			p := m.matchDot(c, obs[dot])
			if len(p) == 0 {
				if d := adopt(c, obs[dot]); d != nil {
					m.nodes[i][dot] = d
				}
				found = true
				break
			}
			why = append(why, fmt.Sprintf("as state %d of %d: %s", k+1, len(cands), strings.Join(p, "; ")))
		}
		delete(m.uncertain[i], dot)
		if !found {
			bad = append(bad, fmt.Sprintf("%s dot %s after a cut-off operation is in no state it may be in: %s", name, dot, strings.Join(why, " / ")))
		}
	}
	if len(bad) > 0 {
		return violationf("%s", strings.Join(bad, "\n  "))
	}
	return e.checkContent(i, obs)
}

// checkContent restores a commit of node i into a scratch branch and
// compares its tree with what was written for it: a random commit of the
// current branch of a random dot. (Working trees that a reset or transfer
// restored are compared on every check already.)
func (e *Engine) checkContent(i int, obs map[string]*obsDot) error {
	dots := sortedKeys(obs)
	if len(dots) == 0 {
		return nil
	}
	for _, dot := range []string{dots[e.rng.IntN(len(dots))]} {
		d := obs[dot]
		b := d.Branches[d.Current]
		if b == nil || len(b.Log) == 0 {
			continue
		}
		c := b.Log[e.rng.IntN(len(b.Log))]
		e.checkSeq++
		scratch := fmt.Sprintf("tortchk%d", e.checkSeq)
		if r := e.dm(i, "branch", "--dot", dot, scratch, c.ID); r.err != nil {
			return r.err
		}
		dir, err := e.path(i, dot+"@"+scratch+".__root__")
		if err != nil {
			return err
		}
		got, err := treeHash(dir)
		if err != nil {
			return err
		}
		if r := e.dm(i, "branch", "--dot", dot, "-d", scratch); r.err != nil {
			return r.err
		}
		if want := e.m.msgTree[c.Message]; got != want {
			return violationf("%s dot %s: commit %s %q restores tree %s; what was committed is %s", e.nodes[i].name, dot, short(c.ID), c.Message, got, want)
		}
		e.stats.contentChecks++
	}
	return nil
}

// verify runs `dm verify` on node i: it must find nothing.
func (e *Engine) verify(i int) error {
	r := e.dm(i, "verify", "--json")
	if r.code == 8 { // corrupt: see the README's exit statuses
		return violationf("dm verify on %s found damage: %s", e.nodes[i].name, oneLine(r.out+r.stderr))
	}
	return r.err
}

// gcClean checks that a gc left nothing collectable on node i: a dry run
// right after it (nothing runs meanwhile) must find nothing to free.
func (e *Engine) gcClean(i int) error {
	var res struct {
		Removed []json.RawMessage `json:"removed"`
		Stats   struct {
			Objects int64 `json:"objects_removed"`
			Bytes   int64 `json:"bytes_removed"`
		} `json:"stats"`
	}
	if err := e.dmJSON(i, &res, "gc", "--dry-run"); err != nil {
		return err
	}
	if res.Stats.Objects != 0 || res.Stats.Bytes != 0 || len(res.Removed) != 0 {
		return violationf("after dm gc on %s a dry run still finds %d objects (%d bytes) and %d commits to remove: gc left unreferenced data", e.nodes[i].name, res.Stats.Objects, res.Stats.Bytes, len(res.Removed))
	}
	return nil
}

// checkAll checks every node; any cut-off state is resolved.
func (e *Engine) checkAll(why string) error {
	if err := e.alive(); err != nil {
		return fmt.Errorf("check after %s: %w", why, err)
	}
	for i := range e.nodes {
		if err := e.checkNode(i); err != nil {
			return fmt.Errorf("check after %s: %w", why, err)
		}
		if err := e.verify(i); err != nil {
			return fmt.Errorf("check after %s: %w", why, err)
		}
	}
	e.stats.checks++
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
