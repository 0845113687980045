package dotmesh

import (
	"context"
	"io"
)

// Transport is one side of a transfer as seen from the other: a peer node
// (over HTTP, see package client) or this node itself (LocalTransport).
// Push, Pull and Clone run the same algorithm between two Transports, so
// the receiving side always checks, stores and finishes on its own node.
//
// Implementations authenticate to the peer and carry each commit's data
// stream unchanged; the streams carry their own end-to-end checksums
// (backend trailers, or the neutral stream's), and the receiving node
// makes nothing visible unless a stream arrived intact.
type Transport interface {
	// State describes a dot's branch on the peer for a transfer. A missing
	// dot or branch is not an error: State.Exists / Branch say so.
	State(ctx context.Context, dot DotName, branch string) (*TransferState, error)
	// SendCommit stores commit c on the peer's branch (it stays invisible
	// until Finish): data is a stream in format, incremental from base (a
	// commit the peer has) when base is not nil.
	SendCommit(ctx context.Context, dot DotName, branch string, c Commit, base *CommitID, format string, data io.Reader) error
	// FetchCommit asks the peer for the stream of commit id in format,
	// incremental from base when not nil.
	FetchCommit(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string) (io.ReadCloser, error)
	// Finish moves the peer's branch to req.Head, whose history the peer
	// must hold, creating the dot and the branch if needed.
	Finish(ctx context.Context, dot DotName, branch string, req FinishRequest) (*FinishResult, error)
}

// TransferState is a node's view of one branch of a dot, for a transfer.
type TransferState struct {
	// Exists is false when the node has no dot of that name (yet).
	Exists bool `json:"exists"`
	// Backend is the dot's backend, or the node's default for new dots.
	Backend string `json:"backend"`
	// Backends lists every backend the node runs.
	Backends []string `json:"backends"`
	// Branch is nil when the dot lacks the branch.
	Branch *Branch `json:"branch,omitempty"`
	// History is the branch's ancestry, oldest first.
	History []Commit `json:"history,omitempty"`
	// Have lists every commit of the dot the node holds data for,
	// including commits received by an interrupted transfer that were not
	// finished yet: a re-run skips them (resume).
	Have []CommitID `json:"have,omitempty"`
	// Usage is the branch's working state (dirty bytes).
	Usage Usage `json:"usage"`
}

// FinishRequest completes a transfer on the receiving node.
type FinishRequest struct {
	// Head is the branch's new head.
	Head CommitID `json:"head"`
	// OldHead is the head the sender saw in State; the receiver refuses
	// (ErrConflict) when its branch moved since.
	OldHead CommitID `json:"old_head,omitempty"`
	// Stash keeps diverged commits on a new branch instead of refusing.
	Stash bool `json:"stash,omitempty"`
}

// FinishResult says what Finish did.
type FinishResult struct {
	Head CommitID `json:"head"`
	// Stashed names the branch that now holds the receiver's diverged
	// commits, when there were any.
	Stashed string `json:"stashed,omitempty"`
	// Created is true when the dot or branch was new on the receiver.
	Created bool `json:"created,omitempty"`
}
