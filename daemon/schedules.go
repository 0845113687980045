package daemon

import (
	"context"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// startSchedules runs the node's policies (dm policy) in the background
// until the returned stop is called, which waits for a run in progress
// to finish: call it before the node closes.
func startSchedules(ctx context.Context, node *dotmesh.Node) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		node.Policies().Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
