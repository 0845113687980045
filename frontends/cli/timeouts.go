package cli

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// timeoutFlags are dm's --connect-timeout and --idle-timeout: they bound
// dm's calls to its node and, for push, pull and clone, the node's calls
// to the peer.
type timeoutFlags struct {
	connect, idle time.Duration
}

func (t *timeoutFlags) add(f *pflag.FlagSet) {
	f.DurationVar(&t.connect, "connect-timeout", client.DefaultConnectTimeout, "give up connecting to a node after `DURATION`")
	f.DurationVar(&t.idle, "idle-timeout", client.DefaultIdleTimeout, "abort a push, pull or clone when a node moves no data for `DURATION` (a transfer that moves data is never cut)")
}

// minIdle leaves room for the node's keep-alive lines.
const minIdle = 2 * api.TransferKeepAlive

func (t *timeoutFlags) validate() error {
	if t.connect <= 0 || t.connect > api.MaxTimeoutMS*time.Millisecond {
		return fmt.Errorf("%w: --connect-timeout %s must be above 0 and at most 24h", dotmesh.ErrInvalidArgument, t.connect)
	}
	if t.idle < minIdle || t.idle > api.MaxTimeoutMS*time.Millisecond {
		return fmt.Errorf("%w: --idle-timeout %s must be from %s to 24h", dotmesh.ErrInvalidArgument, t.idle, minIdle)
	}
	return nil
}

func (t *timeoutFlags) options() []client.Option {
	return []client.Option{client.WithConnectTimeout(t.connect), client.WithIdleTimeout(t.idle)}
}

// apply passes the timeouts on to the node for its calls to the peer.
func (t *timeoutFlags) apply(r *api.TransferRemote) {
	r.ConnectTimeoutMS, r.IdleTimeoutMS = t.connect.Milliseconds(), t.idle.Milliseconds()
}
