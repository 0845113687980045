package dotmesh

import (
	"context"
	"errors"
	"fmt"
)

// Renaming a branch: backends key a branch's storage by its name, so the
// Branch record keeps the storage name (Branch.Storage) and a rename is
// one registry transaction that moves the record to its new key, with the
// dot's current branch and the mounts on it. Nothing in storage moves, so
// a crash leaves either the old name or the new one, never a mix: there
// is nothing to roll forward or back.

func (n *Node) renameBranch(ctx context.Context, dot DotName, oldName, newName string) (*Branch, error) {
	if err := ValidateName("branch", oldName); err != nil {
		return nil, err
	}
	if err := ValidateNewName("branch", newName); err != nil {
		return nil, err
	}
	d, err := n.Dot(ctx, dot)
	if err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	d, drev, err := n.reg.dot(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	b, brev, err := n.reg.branch(ctx, d, oldName)
	if err != nil {
		return nil, err
	}
	if oldName == newName {
		return b, nil
	}
	if err := n.checkNameFree(ctx, d, newName); err != nil {
		return nil, err
	}
	if b.Moving != "" {
		return nil, fmt.Errorf("%w: branch %s of %s is being moved to node %s; rename it when the move is done", ErrConflict, oldName, dot, b.Moving)
	}
	// Incoming records, receiving storage and the transfer's Finish name
	// the branch: a rename meanwhile would strand them.
	for _, name := range []string{oldName, newName} {
		if _, err := n.store.Get(ctx, incomingKey(d.ID, name)); err == nil {
			return nil, fmt.Errorf("%w: branch %s of %s has an incoming transfer; let it finish or abort it, then rename", ErrInUse, name, dot)
		} else if !isNotFound(err) {
			return nil, err
		}
	}
	nb := *b
	nb.Name, nb.Storage = newName, b.StorageName()
	if nb.Storage == newName {
		nb.Storage = "" // renamed back
	}
	conds := []Condition{IfRevision(branchKey(d.ID, oldName), brev), IfAbsent(branchKey(d.ID, newName)),
		IfAbsent(tagKey(d.ID, newName)), IfAbsent(incomingKey(d.ID, oldName)), IfAbsent(incomingKey(d.ID, newName))}
	ops := []Op{DeleteOp(branchKey(d.ID, oldName)), PutOp(branchKey(d.ID, newName), encode(&nb))}
	if d.Current == oldName {
		d.Current = newName
		conds = append(conds, IfRevision(dotKey(d.ID), drev))
		ops = append(ops, PutOp(dotKey(d.ID), encode(d)))
	}
	kvs, err := n.store.List(ctx, mountPrefix(d.ID))
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		m, err := decode[Mount](kv)
		if err != nil {
			return nil, err
		}
		if m.Branch == oldName {
			m.Branch = newName
			conds = append(conds, IfRevision(kv.Key, kv.Revision))
			ops = append(ops, PutOp(kv.Key, encode(m)))
		}
	}
	if len(ops) > maxTxnOps {
		return nil, fmt.Errorf("%w: branch %s of %s has %d mounts; unmount some and rename again", ErrInUse, oldName, dot, len(ops)-3)
	}
	if _, err := n.store.Txn(ctx, conds, ops); err != nil {
		if errors.Is(err, ErrConflict) {
			if ferr := n.checkNameFree(ctx, d, newName); ferr != nil {
				return nil, ferr
			}
			return nil, fmt.Errorf("%w: branch %s of %s changed while renaming it; try again", ErrConflict, oldName, dot)
		}
		return nil, err
	}
	n.log.InfoContext(ctx, "renamed branch", "dot", dot.String(), "from", oldName, "to", newName, "storage", nb.StorageName())
	return &nb, nil
}

// storageFor returns the storage name for a new branch called name: the
// name itself, unless a renamed branch (or commit data of a deleted one,
// or a receive) uses that storage already; then a fresh one.
func (n *Node) storageFor(ctx context.Context, d *Dot, name string) (string, error) {
	used, err := n.storageInUse(ctx, d, name)
	if err != nil || !used {
		return "", err
	}
	base := name
	if len(base) > MaxNameLength-9 {
		base = base[:MaxNameLength-9]
	}
	return base + "-" + randomHex(4), nil
}

// storageInUse reports whether a branch or a commit of d uses storage s.
func (n *Node) storageInUse(ctx context.Context, d *Dot, s string) (bool, error) {
	branches, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return false, err
	}
	commits, err := n.reg.commits(ctx, d.ID)
	if err != nil {
		return false, err
	}
	for _, used := range storageBranches(branches, commits) {
		if used == s {
			return true, nil
		}
	}
	return false, nil
}
