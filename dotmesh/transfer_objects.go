package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// Object have/want: the optional part of a native transfer between
// backends that are ObjectNegotiators (dump). For each commit the mediator
// (runTransfer) asks the sending node for the commit's object list, asks
// the receiving node in batches which of them it holds, and fetches the
// stream without those. Everything else (the stream's own checksums, the
// receiver's completeness check, Finish) is as for whole streams.

// commitObjects is TransferPeer.Objects.
func (n *Node) commitObjects(ctx context.Context, name DotName, id CommitID, base *CommitID, format string) (*ObjectList, error) {
	be, c, bc, err := n.negotiatingSource(ctx, name, id, base, format)
	if err != nil {
		return nil, err
	}
	ids, err := be.StreamObjects(ctx, c.Ref(), headRef(bc))
	if err != nil {
		return nil, err
	}
	if len(ids) > MaxObjectList {
		return nil, fmt.Errorf("%w: commit %s has %d objects, over the %d that take part in have/want", ErrNotSupported, id, len(ids), MaxObjectList)
	}
	return &ObjectList{IDs: ids, Digest: ObjectListDigest(ids)}, nil
}

// sendCommitStreamWithout is TransferPeer.SendWithout.
func (n *Node) sendCommitStreamWithout(ctx context.Context, name DotName, id CommitID, base *CommitID, format string, f *ObjectFilter, w io.Writer) error {
	if f == nil {
		return n.sendCommitStream(ctx, name, id, base, format, w)
	}
	be, c, bc, err := n.negotiatingSource(ctx, name, id, base, format)
	if err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	ids, err := be.StreamObjects(ctx, c.Ref(), headRef(bc))
	if err != nil {
		return err
	}
	if len(ids) != f.Count || ObjectListDigest(ids) != f.Digest {
		return fmt.Errorf("%w: the object filter was made for another object list of commit %s (%d objects); list the objects again", ErrInvalidArgument, id, f.Count)
	}
	var have []ObjectID
	for i, oid := range ids {
		if f.Held(i) {
			have = append(have, oid)
		}
	}
	return be.SendWithout(ctx, c.Ref(), headRef(bc), have, countedWriter{w, n.movedBytes(DirSent)})
}

func (n *Node) negotiatingSource(ctx context.Context, name DotName, id CommitID, base *CommitID, format string) (ObjectNegotiator, *Commit, *Commit, error) {
	if isNeutral(format) {
		return nil, nil, nil, fmt.Errorf("%w: the %s stream has no objects to negotiate", ErrNotSupported, FormatNeutral)
	}
	c, bc, err := n.sendSource(ctx, name, id, base, format)
	if err != nil {
		return nil, nil, nil, err
	}
	d, err := n.Dot(ctx, name)
	if err != nil {
		return nil, nil, nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, nil, nil, err
	}
	on, ok := be.(ObjectNegotiator)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: backend %s sends whole streams (no object have/want)", ErrNotSupported, d.Backend)
	}
	return on, c, bc, nil
}

// haveObjects is TransferPeer.HaveObjects.
func (n *Node) haveObjects(ctx context.Context, name DotName, branch string, c CommitID, format string, ids []ObjectID) ([]bool, error) {
	if err := ValidateName("branch", branch); err != nil {
		return nil, err
	}
	if err := ValidateID("commit", string(c), false); err != nil {
		return nil, err
	}
	if err := validateObjectIDs(ids); err != nil {
		return nil, err
	}
	kind, err := parseFormat(format)
	if err != nil {
		return nil, err
	}
	if kind == FormatNeutral {
		return nil, fmt.Errorf("%w: the %s stream has no objects to negotiate", ErrNotSupported, FormatNeutral)
	}
	if err := name.Validate(); err != nil {
		return nil, err
	}
	be, ok := n.backends[kind]
	if !ok {
		return nil, fmt.Errorf("%w: this node does not run backend %q", ErrNotSupported, kind)
	}
	if _, ok := be.(ObjectNegotiator); !ok {
		return nil, fmt.Errorf("%w: backend %s receives whole streams (no object have/want)", ErrNotSupported, kind)
	}
	// Under the dot's lock, with the transfer's record refreshed, so that
	// no abort or expiry drops the pins being made.
	t, unlock, err := n.lockedTarget(ctx, name, kind)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if t.dot.Backend != kind {
		return nil, fmt.Errorf("%w: dot %s is stored with backend %s here, not %s", ErrNotSupported, name, t.dot.Backend, kind)
	}
	on, ok := t.be.(ObjectNegotiator)
	if !ok {
		return nil, fmt.Errorf("%w: backend %s receives whole streams (no object have/want)", ErrNotSupported, kind)
	}
	if err := n.touchIncoming(ctx, t, branch, n.previousBytes(ctx, t.dot.ID, branch)); err != nil {
		return nil, err
	}
	ref := CommitRef{BranchRef: BranchRef{Dot: t.dot.ID, Branch: recvBranch(branch)}, ID: c}
	have, err := on.HaveObjects(ctx, ref, ids)
	if err != nil {
		return nil, err
	}
	if len(have) != len(ids) {
		return nil, fmt.Errorf("backend %s answered %d of %d objects", kind, len(have), len(ids))
	}
	return have, nil
}

func validateObjectIDs(ids []ObjectID) error {
	if len(ids) > MaxObjectBatch {
		return fmt.Errorf("%w: %d object ids in one request; the limit is %d", ErrInvalidArgument, len(ids), MaxObjectBatch)
	}
	for _, id := range ids {
		if err := ValidateObjectID(id); err != nil {
			return err
		}
	}
	return nil
}

// negotiate runs the have/want exchange for commit c: it returns the
// filter for the stream, how many objects the receiver held and how many
// the stream will carry, or a nil filter when the sides cannot negotiate
// (then the whole stream is sent).
// have asks the receiver about one batch of ids.
func negotiate(ctx context.Context, src Transport, srcDot DotName, c Commit, base *CommitID, format string, have func(context.Context, []ObjectID) ([]bool, error)) (*ObjectFilter, int, int, error) {
	so, ok := src.(ObjectTransport)
	if isNeutral(format) || !ok || have == nil {
		return nil, 0, 0, nil
	}
	// A peer that cannot negotiate answers ErrNotSupported; one that
	// predates have/want answers 404 (ErrNotFound). Either way the whole
	// stream is sent, and a real problem shows up when it is fetched.
	list, err := so.CommitObjects(ctx, srcDot, c.ID, base, format)
	if errors.Is(err, ErrNotSupported) || errors.Is(err, ErrNotFound) {
		return nil, 0, 0, nil
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("listing the objects of commit %s: %w", c.ID, err)
	}
	f := &ObjectFilter{Count: len(list.IDs), Digest: list.Digest, Have: make([]byte, (len(list.IDs)+7)/8)}
	nheld := 0
	for off := 0; off < len(list.IDs); off += MaxObjectBatch {
		batch := list.IDs[off:min(off+MaxObjectBatch, len(list.IDs))]
		held, err := have(ctx, batch)
		if (errors.Is(err, ErrNotSupported) || errors.Is(err, ErrNotFound)) && off == 0 {
			return nil, 0, 0, nil
		}
		if err != nil {
			return nil, 0, 0, fmt.Errorf("asking which objects of commit %s the receiver holds: %w", c.ID, err)
		}
		if len(held) != len(batch) {
			return nil, 0, 0, fmt.Errorf("%w: the receiver answered for %d of %d objects", ErrCorrupt, len(held), len(batch))
		}
		for i, h := range held {
			if h {
				j := off + i
				f.Have[j/8] |= 1 << (j % 8)
				nheld++
			}
		}
	}
	return f, nheld, len(list.IDs) - nheld, nil
}

// copyCommitNegotiated is copyCommit with have/want when both sides offer
// it; it reports how many objects the receiver already held. remaining,
// when not nil, hears before the stream starts how many of the commit's
// objects the receiver held and how many it lacks (a resumed transfer
// sends only these).
func copyCommitNegotiated(ctx context.Context, src Transport, srcDot DotName, dst Transport, dstDot DotName, branch string, c Commit, base *CommitID, format string, moved *atomic.Int64, report func(), remaining func(held, send int)) (int, error) {
	var have func(context.Context, []ObjectID) ([]bool, error)
	if do, ok := dst.(ObjectTransport); ok {
		have = func(ctx context.Context, ids []ObjectID) ([]bool, error) {
			return do.HaveObjects(ctx, dstDot, branch, c.ID, format, ids)
		}
	}
	f, held, send, err := negotiate(ctx, src, srcDot, c, base, format, have)
	if err != nil {
		return 0, err
	}
	if f != nil && remaining != nil {
		remaining(held, send)
	}
	if f == nil {
		return 0, copyCommit(ctx, src, srcDot, dst, dstDot, branch, c, base, format, moved, report)
	}
	ctx, cancel := context.WithCancel(streamContext(ctx, src, dst))
	defer cancel()
	rc, err := src.(ObjectTransport).FetchCommitWithout(ctx, srcDot, c.ID, base, format, f)
	if err != nil {
		return 0, fmt.Errorf("reading commit %s: %w", c.ID, err)
	}
	defer rc.Close()
	cr := &countingReader{r: rc, n: moved, every: 1 << 20, report: report}
	if err := dst.SendCommit(ctx, dstDot, branch, c, base, format, cr); err != nil {
		return 0, fmt.Errorf("transferring commit %s: %w", c.ID, err)
	}
	return held, nil
}
