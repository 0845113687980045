package dotmesh

import (
	"context"
	"io"
)

// Transport moves commits between this node and one peer: first the commit
// metadata, then the backend's stream of its data. Implementations
// authenticate to the peer and checksum every stream end to end; the
// receiving side makes a commit visible only after all of it arrived.
type Transport interface {
	// Branch returns the peer's view of a branch and its commits, oldest
	// first. ErrNotFound when the peer lacks the dot or the branch.
	Branch(ctx context.Context, dot DotName, branch string) (*Branch, []Commit, error)
	// SendCommit delivers commit c to the peer: data is the stream the
	// local backend's Send produced, incremental from base when not nil.
	SendCommit(ctx context.Context, dot DotName, c Commit, base *CommitID, data io.Reader) error
	// FetchCommit asks the peer for the stream of commit id, incremental
	// from base when not nil.
	FetchCommit(ctx context.Context, dot DotName, id CommitID, base *CommitID) (io.ReadCloser, error)
}
