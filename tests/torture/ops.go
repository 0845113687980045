package torture

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// expectedRefusals are the errors an operation may meet by the run's own
// choices (diverged histories, uncommitted changes on the receiving side,
// a peer that is down); any other error of an operation no kill cut off is
// a violation.
var expectedRefusals = []string{"diverged", "uncommitted", "changes", "already exists", "refused", "connection refused", "no commits", "delete them first"}

// outcome counts one operation and says whether its error was expected.
func (e *Engine) outcome(class string, r result, victim int) error {
	s := e.stats.byClass[class]
	switch {
	case victim != -1:
		s.cut++
	case r.err == nil:
		s.ok++
	default:
		s.refused++
		msg := strings.ToLower(r.stderr)
		for _, p := range expectedRefusals {
			if strings.Contains(msg, p) {
				return nil
			}
		}
		return violationf("%s failed with no node killed: %v", class, r.err)
	}
	return nil
}

// runOp runs one operation of class; cut reports a kill and restart.
func (e *Engine) runOp(class string) (cut bool, err error) {
	i, dot, ok := e.pickDot()
	if !ok && class != "idle-kill" {
		class = "commit"
	}
	var victim = -1
	switch class {
	case "idle-kill":
		i = e.rng.IntN(len(e.nodes))
		e.kill(i)
		e.stats.byClass[class].ok++
		return true, e.restart(i)
	case "write":
		err = e.write(i, dot)
		e.stats.byClass[class].ok++
		return false, err
	case "commit":
		victim, err = e.commit(i, dot)
	case "reset":
		victim, err = e.reset(i, dot)
	case "checkout", "branch":
		victim, err = e.newBranch(i, dot, class)
	case "delete-branch":
		victim, err = e.deleteBranch(i, dot)
	case "push", "pull", "clone":
		victim, err = e.transfer(i, dot, class)
	case "gc":
		victim, err = e.gc(i, dot)
	case "verify":
		var r result
		victim, err = e.withKill(class, []int{i}, func() { r = e.dm(i, "verify", "--json") })
		if err == nil && victim == -1 && r.code == 8 { // corrupt
			err = violationf("dm verify on %s found damage: %s", e.nodes[i].name, oneLine(r.out+r.stderr))
		} else if err == nil {
			err = e.outcome(class, r, victim)
		}
	}
	return victim != -1, err
}

// pickDot picks a node holding a dot, and the dot.
func (e *Engine) pickDot() (int, string, bool) {
	var cands []int
	for i := range e.nodes {
		if len(e.m.nodes[i]) > 0 {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return 0, "", false
	}
	i := cands[e.rng.IntN(len(cands))]
	dots := sortedKeys(e.m.nodes[i])
	return i, dots[e.rng.IntN(len(dots))], true
}

// current is the model of dot's current branch on node i.
func (e *Engine) current(i int, dot string) (string, *branchModel) {
	d := e.m.nodes[i][dot]
	return d.Current, d.Branches[d.Current]
}

// write changes one to three files of the current branch's working tree
// (subdots a and b): new content of random size, or a deletion.
func (e *Engine) write(i int, dot string) error {
	bn, b := e.current(i, dot)
	root, err := e.path(i, dot+"@"+bn+".__root__")
	if err != nil {
		return err
	}
	for range 1 + e.rng.IntN(3) {
		sub := []string{"a", "b"}[e.rng.IntN(2)]
		if _, err := e.path(i, dot+"@"+bn+"."+sub); err != nil {
			return err
		}
		f := filepath.Join(root, sub, "f"+strconv.Itoa(e.rng.IntN(6)))
		if e.rng.IntN(5) == 0 {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				return err
			}
			continue
		}
		size := e.rng.IntN(16 << 10)
		if e.rng.IntN(4) == 0 {
			size = e.rng.IntN(e.cfg.MaxFile)
		}
		buf := make([]byte, size)
		e.data.Read(buf)
		if err := os.WriteFile(f, buf, 0o644); err != nil {
			return err
		}
	}
	b.Tree, err = treeHash(root)
	return err
}

func (e *Engine) commit(i int, dot string) (int, error) {
	if e.rng.IntN(5) > 0 {
		if err := e.write(i, dot); err != nil {
			return -1, err
		}
	}
	bn, b := e.current(i, dot)
	msg := fmt.Sprintf("s%d-op%d", e.cfg.Seed, e.opSeq)
	e.m.msgTree[msg] = b.Tree
	before := e.m.nodes[i][dot].clone()
	var r result
	victim, err := e.withKill("commit", []int{i}, func() { r = e.dm(i, "commit", "--dot", dot, "-m", msg, "--json") })
	if err != nil {
		return victim, err
	}
	switch {
	case victim != -1:
		after := before.clone()
		after.Branches[bn].HeadMsg = msg
		e.m.cutOff(i, dot, before, after)
	case r.err == nil:
		var c obsCommit
		if err := json.Unmarshal([]byte(r.out), &c); err != nil || c.ID == "" {
			return victim, fmt.Errorf("dm commit --json printed %q", r.out)
		}
		e.m.idMsg[c.ID] = msg
		b.Head, b.Must = c.ID, append([]string{c.ID}, b.Must...)
	case strings.Contains(strings.ToLower(r.stderr), "nothing to commit"):
		// Refused as git refuses an empty commit: expected, unless the
		// model knows the files differ from the head's.
		head := e.m.treeOf(b.Head)
		if b.HeadMsg != "" {
			head = e.m.msgTree[b.HeadMsg]
		}
		if head != "" && head != b.Tree {
			return victim, violationf("commit on node %d of %s refused as empty, but its files differ from the head's: %s", i, dot, r.stderr)
		}
		e.stats.byClass["commit"].refused++
		return victim, nil
	}
	return victim, e.outcome("commit", r, victim)
}

func (e *Engine) reset(i int, dot string) (int, error) {
	bn, b := e.current(i, dot)
	if len(b.Must) == 0 {
		return e.commit(i, dot)
	}
	k := 0
	if e.rng.IntN(3) > 0 {
		k = e.rng.IntN(len(b.Must))
	}
	ref := b.Must[k]
	before := e.m.nodes[i][dot].clone()
	var r result
	victim, err := e.withKill("reset", []int{i}, func() { r = e.dm(i, "reset", "--hard", "--dot", dot, ref) })
	if err != nil {
		return victim, err
	}
	after := before.clone()
	ab := after.Branches[bn]
	ab.Head, ab.Must, ab.Tree = ref, ab.Must[k:], e.m.treeOf(ref)
	switch {
	case victim != -1:
		e.m.cutOff(i, dot, before, after)
	case r.err == nil:
		e.m.nodes[i][dot] = after
	}
	return victim, e.outcome("reset", r, victim)
}

// newBranch makes a branch: `dm checkout -b` (switching to it) or `dm
// branch NAME FROM` (from a random acknowledged commit); checkout also
// switches to an existing branch.
func (e *Engine) newBranch(i int, dot, class string) (int, error) {
	d := e.m.nodes[i][dot]
	cur, b := e.current(i, dot)
	name := fmt.Sprintf("b%d", e.opSeq)
	args := []string{"checkout", "--dot", dot, "-b", name}
	from := b.Head
	var fromMust []string = b.Must
	switch {
	case class == "checkout" && (len(d.Branches) >= 4 || e.rng.IntN(2) == 0):
		others := slices.DeleteFunc(sortedKeys(d.Branches), func(n string) bool { return n == cur })
		if len(others) == 0 {
			return e.commit(i, dot)
		}
		name = others[e.rng.IntN(len(others))]
		args = []string{"checkout", "--dot", dot, name}
	case len(d.Branches) >= 4:
		return e.deleteBranch(i, dot)
	case class == "branch":
		args = []string{"branch", "--dot", dot, name}
		if len(b.Must) > 0 {
			k := e.rng.IntN(len(b.Must))
			from, fromMust = b.Must[k], b.Must[k:]
			args = append(args, from)
		}
	}
	before := d.clone()
	after := d.clone()
	if _, ok := after.Branches[name]; !ok {
		after.Branches[name] = &branchModel{Head: from, Must: slices.Clone(fromMust), Tree: e.m.treeOf(from)}
		before.NewBranchOK = func(n string) bool { return n == name }
	}
	if args[0] == "checkout" {
		after.Current = name
	}
	var r result
	victim, err := e.withKill(class, []int{i}, func() { r = e.dm(i, args...) })
	if err != nil {
		return victim, err
	}
	switch {
	case victim != -1:
		e.m.cutOff(i, dot, before, after)
	case r.err == nil:
		e.m.nodes[i][dot] = after
	}
	return victim, e.outcome(class, r, victim)
}

func (e *Engine) deleteBranch(i int, dot string) (int, error) {
	d := e.m.nodes[i][dot]
	others := slices.DeleteFunc(sortedKeys(d.Branches), func(n string) bool { return n == d.Current })
	if len(others) == 0 {
		return e.newBranch(i, dot, "branch")
	}
	name := others[e.rng.IntN(len(others))]
	before, after := d.clone(), d.clone()
	delete(after.Branches, name)
	var r result
	victim, err := e.withKill("delete-branch", []int{i}, func() { r = e.dm(i, "branch", "--dot", dot, "-d", name) })
	if err != nil {
		return victim, err
	}
	switch {
	case victim != -1:
		e.m.cutOff(i, dot, before, after)
	case r.err == nil:
		e.m.nodes[i][dot] = after
	}
	return victim, e.outcome("delete-branch", r, victim)
}

// transferSummary is what push, pull and clone print with --json.
type transferSummary struct {
	Head     string `json:"head"`
	UpToDate bool   `json:"up_to_date"`
	Stashed  string `json:"stashed"`
}

// received is the receiver's dot after it took branch bn at the sender's
// state sb, stashing its own branch as stash when not "".
func (e *Engine) received(old *dotModel, bn string, sb *branchModel, stash string) *dotModel {
	d := old.clone()
	if d == nil {
		d = &dotModel{Branches: map[string]*branchModel{}}
	}
	nb := &branchModel{Head: sb.Head, Must: slices.Clone(sb.Must), Tree: e.m.treeOf(sb.Head)}
	if ob := d.Branches[bn]; ob != nil {
		if ob.Head == sb.Head {
			nb.Tree = ob.Tree // up to date: the working tree is left alone
		}
		if stash != "" {
			d.Branches[stash] = ob
			// A diverged receiver gets the sender's commits down to the
			// newest one it shares; older ones it need not have (its
			// history gc pruned stays shallow, as below), but those it
			// acknowledged itself it still has.
			if k := slices.IndexFunc(sb.Must, func(id string) bool { return slices.Contains(ob.Must, id) }); k >= 0 {
				nb.Must = slices.Clone(sb.Must[:k+1])
				for _, id := range sb.Must[k+1:] {
					if slices.Contains(ob.Must, id) {
						nb.Must = append(nb.Must, id)
					}
				}
			}
		} else if k := slices.Index(sb.Must, ob.Head); k >= 0 {
			// A fast-forward: the receiver gets the commits after its
			// head, and its own older acknowledged commits stay. Those
			// older than its head it need not have: a receiver whose
			// history gc pruned stays shallow (the sender's older
			// commits are not sent to it).
			nb.Must = slices.Clone(sb.Must[:k+1])
			for _, id := range ob.Must {
				if !slices.Contains(nb.Must, id) {
					nb.Must = append(nb.Must, id)
				}
			}
		}
	}
	d.Branches[bn] = nb
	return d
}

// transfer runs a push (from node i), a pull or a clone (to another node,
// from node i) of dot's branch.
func (e *Engine) transfer(i int, dot, class string) (int, error) {
	if class == "clone" && e.everywhere(dot) && len(e.m.nodes[i]) < 3 {
		var err error
		if dot, err = e.newDot(i); err != nil {
			return -1, err
		}
	}
	sd := e.m.nodes[i][dot]
	var withHead []string
	for _, bn := range sortedKeys(sd.Branches) {
		if sd.Branches[bn].Head != "" {
			withHead = append(withHead, bn)
		}
	}
	if len(withHead) == 0 {
		return e.commit(i, dot)
	}
	bn := withHead[e.rng.IntN(len(withHead))]
	sb := sd.Branches[bn]
	j := (i + 1 + e.rng.IntN(len(e.nodes)-1)) % len(e.nodes)
	if j == i {
		return e.commit(i, dot)
	}
	old := e.m.nodes[j][dot]
	if class == "clone" && old != nil || class == "pull" && old == nil {
		class = "push"
	}
	var args []string
	switch class {
	case "push":
		args = []string{"--remote", e.nodes[i].name, "push", e.nodes[j].name, dot, bn}
	case "pull":
		args = []string{"--remote", e.nodes[j].name, "pull", e.nodes[i].name, dot, bn}
	case "clone":
		args = []string{"--remote", e.nodes[j].name, "clone", e.nodes[i].name, dot, bn}
	}
	stashing := class != "clone" && e.rng.IntN(2) == 0
	if stashing {
		args = append(args, "--stash-on-divergence")
	}
	args = append(args, "--json")
	var r result
	victim, err := e.withKill(class, []int{i, j, clientCut}, func() { r = e.run(args) })
	if err != nil {
		return victim, err
	}
	if victim == clientCut {
		// The nodes may go on with what the command started: let the
		// receiver settle before the check looks.
		if err := e.settle(j, dot); err != nil {
			return victim, err
		}
	}
	stashOK := func(n string) bool { return stashing && strings.HasPrefix(n, bn+"-DIVERGED-") }
	switch {
	case victim != -1:
		var before *dotModel
		if old != nil {
			before = old.clone()
			before.NewBranchOK = stashOK
		}
		after := e.received(old, bn, sb, "")
		after.NewBranchOK = stashOK
		if old == nil {
			after.Current = ""
		} else if ob := old.Branches[bn]; ob != nil && !stashing && !slices.Contains(sb.Must, ob.Head) {
			after = nil // not a fast-forward: only a stash could take it
		}
		if after != nil {
			e.m.cutOff(j, dot, before, after)
		} else {
			e.m.cutOff(j, dot, before, before)
		}
	case r.err == nil:
		// What the receiver's branch is now tells what happened: the
		// sender's head arrived, or the receiver was ahead already.
		var s transferSummary
		if err := json.Unmarshal([]byte(r.out), &s); err != nil {
			return victim, fmt.Errorf("dm %s printed %q", strings.Join(args, " "), r.out)
		}
		cur, heads, err := e.heads(j, dot)
		if err != nil {
			return victim, err
		}
		switch {
		case heads[bn] == sb.Head:
			d := e.received(old, bn, sb, s.Stashed)
			if old == nil {
				d.Current = cur
			}
			e.m.nodes[j][dot] = d
		case old != nil && old.Branches[bn] != nil && heads[bn] == old.Branches[bn].Head:
			// The receiver was ahead: nothing changed.
		default:
			return victim, violationf("dm %s succeeded, but %s's branch %s is at %s: neither the sender's head %s nor its own", strings.Join(args, " "), e.nodes[j].name, bn, short(heads[bn]), short(sb.Head))
		}
		if d := e.m.nodes[j][dot]; d != nil && d.Branches[d.Current] == nil {
			return victim, violationf("%s made dot %s on %s with current branch %q, which it lacks", class, dot, e.nodes[j].name, d.Current)
		}
	}
	return victim, e.outcome(class, r, victim)
}

// settle waits until dot's branches on node j stay the same for a second
// (at most 60 s).
func (e *Engine) settle(j int, dot string) error {
	state := func() string {
		r := e.dm(j, "branch", "--dot", dot, "-H")
		return r.out + r.stderr
	}
	prev := state()
	for range 60 {
		time.Sleep(time.Second)
		cur := state()
		if cur == prev {
			return nil
		}
		prev = cur
	}
	return violationf("dot %s on %s still changes 60 s after its transfer command was interrupted", dot, e.nodes[j].name)
}

// everywhere reports whether every node has dot.
func (e *Engine) everywhere(dot string) bool {
	for j := range e.nodes {
		if e.m.nodes[j][dot] == nil {
			return false
		}
	}
	return true
}

// newDot makes a dot on node i with one commit, for clones to copy.
func (e *Engine) newDot(i int) (string, error) {
	dot := fmt.Sprintf("d%d", e.opSeq)
	if r := e.dm(i, "init", dot); r.err != nil {
		return "", r.err
	}
	e.m.nodes[i][dot] = &dotModel{Current: "master", Branches: map[string]*branchModel{"master": {Tree: emptyTree}}}
	if err := e.write(i, dot); err != nil {
		return "", err
	}
	_, b := e.current(i, dot)
	msg := fmt.Sprintf("s%d-op%d", e.cfg.Seed, e.opSeq)
	e.m.msgTree[msg] = b.Tree
	var c obsCommit
	// The writes may have removed every file: the first commit is still made.
	if err := e.dmJSON(i, &c, "commit", "--dot", dot, "-m", msg, "--allow-empty"); err != nil {
		return "", err
	}
	e.m.idMsg[c.ID] = msg
	b.Head, b.Must = c.ID, []string{c.ID}
	return dot, nil
}

// heads returns dot's current branch on node i and its branches' heads.
func (e *Engine) heads(i int, dot string) (string, map[string]string, error) {
	r := e.dm(i, "branch", "--dot", dot, "-H")
	if r.err != nil {
		return "", nil, r.err
	}
	cur, heads := "", map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			return "", nil, fmt.Errorf("node %s: dm branch --dot %s -H printed %q", e.nodes[i].name, dot, line)
		}
		heads[f[0]] = f[1]
		if f[2] == "yes" {
			cur = f[0]
		}
	}
	return cur, heads, nil
}

func (e *Engine) gc(i int, dot string) (int, error) {
	keep := 1 + e.rng.IntN(3)
	// Whether or not it completes, only the newest keep commits of each
	// branch must remain.
	for _, b := range e.m.nodes[i][dot].Branches {
		if len(b.Must) > keep {
			b.Must = b.Must[:keep]
		}
	}
	var r result
	victim, err := e.withKill("gc", []int{i}, func() {
		r = e.dm(i, "gc", dot, "--keep", strconv.Itoa(keep), "--json")
	})
	if err != nil {
		return victim, err
	}
	if err := e.outcome("gc", r, victim); err != nil {
		return victim, err
	}
	if victim == -1 && r.err == nil {
		return victim, e.gcClean(i)
	}
	return victim, nil
}
