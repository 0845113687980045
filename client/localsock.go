package client

import (
	"context"
	"net"
	"net/url"
	"sync/atomic"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/internal/unixsock"
)

// WithLocalSocket dials the unix socket path (a local node's API socket,
// DATADIR/api.sock) instead of TCP for the plain-HTTP calls to a loopback
// base URL, as Docker's clients dial docker.sock: it saves connect's and
// close's TCP work (0.1-0.2 ms of a dm command). When the socket cannot be
// dialed (no node serves it: ENOENT, ECONNREFUSED; another user's node:
// EACCES) the client dials TCP, and keeps to it. The socket must serve
// the same node as the URL: the node whose data directory holds it.
func WithLocalSocket(path string) Option { return func(o *options) { o.socket = path } }

// dialFunc is how a transport connects.
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// socketDialer dials sock for connections to host, else (and once sock
// failed) tcp.
type socketDialer struct {
	sock, host string
	tcp        dialFunc
	failed     atomic.Bool
}

// localDial is o's dial for the node at u: TCP, or through o.socket
// first where WithLocalSocket applies (see newSocketDialer).
func localDial(u *url.URL, o *options) dialFunc {
	tcp := dialer(o.connect).DialContext
	if d := newSocketDialer(u, o, tcp); d != nil {
		return d.dial
	}
	return tcp
}

// newSocketDialer is the dialer of o.socket for the node at u, nil unless
// u is plain HTTP to a loopback host.
func newSocketDialer(u *url.URL, o *options, tcp dialFunc) *socketDialer {
	if o.socket == "" || len(o.socket) > unixsock.MaxPath || u.Scheme != "http" || !api.LoopbackAddr(u.Host) {
		return nil
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return &socketDialer{sock: o.socket, host: host, tcp: tcp}
}

func (d *socketDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr != d.host || d.failed.Load() {
		return d.tcp(ctx, network, addr)
	}
	// A unix connect does not wait (a full backlog refuses it at once),
	// so it needs neither the connect timeout nor ctx: DialUnix skips the
	// Dialer's resolving and deadline, 25-30 us of a fresh process.
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: d.sock, Net: "unix"})
	if err == nil {
		return c, nil
	}
	d.failed.Store(true)
	return d.tcp(ctx, network, addr)
}
