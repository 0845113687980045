package dotmesh

// Shallow histories. gc removes a branch's older commits; the oldest one
// kept still names its parent, which is gone. Such a history travels as
// git's shallow clones do: its oldest commit goes as a full commit with
// Commit.Pruned set, and the receiver records it with Pruned, so its
// history starts there too (and so on to further nodes).

// markPruned makes Pruned say where chain (an ancestry, newest first) is
// cut: true on its oldest commit when that one's parent is not among
// commits (also where gc ran before it marked commits), false elsewhere
// (a parent that arrived later joins the history again).
func markPruned(commits map[CommitID]*Commit, chain []*Commit) {
	for i, c := range chain {
		c.Pruned = i == len(chain)-1 && c.Parent != "" && commits[c.Parent] == nil
	}
}

// prunedOps marks the commits whose parent gc drops as where their
// history now starts: the writes for gc's transaction.
func prunedOps(commits map[CommitID]*Commit, drop []*Commit) []Op {
	dropped := make(map[CommitID]bool, len(drop))
	for _, c := range drop {
		dropped[c.ID] = true
	}
	var ops []Op
	for _, c := range commits {
		if !dropped[c.ID] && !c.Pruned && c.Parent != "" && dropped[c.Parent] {
			m := *c
			m.Pruned = true
			ops = append(ops, PutOp(commitKey(c.Dot, c.ID), encode(&m)))
		}
	}
	return ops
}

// shallowStart returns the index in from (a sender's history, oldest
// first) of the commit where the receiver's history to starts, when that
// history was pruned: the receiver stays shallow, as a git fetch into a
// shallow clone does, so nothing before it is sent.
func shallowStart(from, to []Commit) int {
	if len(to) == 0 || !to[0].Pruned {
		return 0
	}
	for i, c := range from {
		if c.ID == to[0].ID {
			return i
		}
	}
	return 0
}

// prunedDivergedError refuses a transfer whose sending side's history was
// pruned at start, while the receiver's head is not in that history and
// the receiver lacks start's parent: whether its head is an older
// ancestor cannot be told.
func prunedDivergedError(name DotName, branch string, start Commit, head CommitID) error {
	return &DivergedError{Dot: name, Branch: branch, Start: start.ID, Head: head}
}
