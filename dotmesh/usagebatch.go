package dotmesh

import "context"

// UsageBatcher is an optional capability of backends whose Usage keeps
// state that one refresh makes current for every Usage call of a listing
// (dump: which working trees are still empty, from the kernel's change
// notifications read once, rather than a system call per tree). ListDots
// calls BeginUsage before its Usage calls and gives them the context it
// returns; a Usage called with any other context refreshes for itself.
type UsageBatcher interface {
	BeginUsage(ctx context.Context) context.Context
}

// beginUsage gives every backend that batches Usage the chance to
// refresh once for a listing's Usage calls.
func (n *Node) beginUsage(ctx context.Context) context.Context {
	for _, be := range n.backends {
		if ub, ok := be.(UsageBatcher); ok {
			ctx = ub.BeginUsage(ctx)
		}
	}
	return ctx
}
