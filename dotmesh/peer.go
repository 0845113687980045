package dotmesh

import (
	"context"
	"io"
)

// TransferPeer is this node as the other side of a transfer: the calls
// another node makes, through its Transport (in a cluster, its Peer),
// while it runs a Push, Pull or Clone against this one. Package server
// serves them over HTTP and LocalTransport calls them in-process; a
// program that only moves data uses Node.Push, Pull and Clone and needs
// no TransferPeer.
//
// When this node receives (the other node pushes here, or this node is
// the destination of a pull or clone run elsewhere), the calls come in
// this order:
//
//  1. State: what this node has of the branch: its history, every commit
//     held (those of an interrupted transfer too, so a re-run resumes)
//     and whether its working state has uncommitted changes.
//  2. For each missing commit, oldest first: with an object-based backend
//     (dump), HaveObjects for the objects the sending node listed with
//     Objects; then Receive with the commit's stream. Received commits
//     stay invisible; an interrupted transfer's are kept for
//     Options.TransferPin (see TransferPeer.Incoming).
//  3. Finish: moves the branch to the new head in one transaction, or
//     refuses (uncommitted changes, diverged histories, a branch that
//     moved meanwhile) and changes nothing.
//
// When this node sends (the other node pulls or clones from here): State
// with SkipUsage, then for each commit Send, or Objects and SendWithout
// when the receiver negotiates objects.
//
// Every argument comes from the network and is checked here. A
// TransferPeer is valid as long as its Node is open.
//
// Incoming and Abort are for this node's operator, not for other nodes:
// they list and end receives that were cut off before Finish.
type TransferPeer struct{ n *Node }

// TransferPeer returns the side of n that other nodes' transfers call.
func (n *Node) TransferPeer() *TransferPeer { return &TransferPeer{n: n} }

// State describes branch of dot on this node for a transfer (the
// Transport.State of this node). A missing dot or branch is not an error.
func (p *TransferPeer) State(ctx context.Context, dot DotName, branch string, opts StateOptions) (*TransferState, error) {
	return p.n.transferState(ctx, dot, branch, opts)
}

// Receive stores commit c, whose data r carries in format, on branch of
// dot, incremental from base when not nil (the Transport.SendCommit of
// this node). Nothing becomes visible until Finish; a commit that is here
// already is accepted and its stream discarded.
func (p *TransferPeer) Receive(ctx context.Context, dot DotName, branch string, c Commit, base *CommitID, format string, r io.Reader) error {
	return p.n.receiveCommit(ctx, dot, branch, c, base, format, r)
}

// Finish moves branch of dot to req.Head (the Transport.Finish of this
// node): it creates the dot or branch when new, refuses to discard
// uncommitted changes or diverged commits (unless req.Stash), restores
// the working state and moves the head with one conditioned transaction.
func (p *TransferPeer) Finish(ctx context.Context, dot DotName, branch string, req FinishRequest) (*FinishResult, error) {
	return p.n.finishReceive(ctx, dot, branch, req)
}

// Send writes commit id of dot in format to w, incremental from base when
// not nil (the Transport.FetchCommit of this node).
func (p *TransferPeer) Send(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string, w io.Writer) error {
	return p.n.sendCommitStream(ctx, dot, id, base, format, w)
}

// SendWithout is Send leaving out the objects f marks as held by the
// receiver; a nil f sends everything (the
// ObjectTransport.FetchCommitWithout of this node).
func (p *TransferPeer) SendWithout(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string, f *ObjectFilter, w io.Writer) error {
	return p.n.sendCommitStreamWithout(ctx, dot, id, base, format, f, w)
}

// Objects lists the objects of commit id's native stream on this node
// (the ObjectTransport.CommitObjects of this node); ErrNotSupported when
// the dot's backend cannot negotiate objects.
func (p *TransferPeer) Objects(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string) (*ObjectList, error) {
	return p.n.commitObjects(ctx, dot, id, base, format)
}

// HaveObjects reports which of ids this node holds for receiving commit c
// of dot onto branch, and keeps those objects until then (the
// ObjectTransport.HaveObjects of this node). ids: at most MaxObjectBatch.
func (p *TransferPeer) HaveObjects(ctx context.Context, dot DotName, branch string, c CommitID, format string, ids []ObjectID) ([]bool, error) {
	return p.n.haveObjects(ctx, dot, branch, c, format, ids)
}
