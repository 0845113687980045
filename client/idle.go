package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Defaults of WithConnectTimeout and WithIdleTimeout.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
)

// WithConnectTimeout bounds making a connection (TCP and TLS handshake);
// 0 means DefaultConnectTimeout. With WithHTTPClient the given client's
// transport decides instead.
func WithConnectTimeout(d time.Duration) Option { return func(o *options) { o.connect = d } }

// WithIdleTimeout aborts a transfer call (the Transport methods and
// Transfer) when the node moves no bytes for d while the call waits on it;
// 0 means DefaultIdleTimeout. A transfer that keeps moving bytes is never
// cut, however long it runs, and time spent producing or consuming the
// data on this side does not count.
func WithIdleTimeout(d time.Duration) Option { return func(o *options) { o.idle = d } }

// idleWatch cancels one call when the peer stays silent for idle while the
// call waits on it: it runs while waiting is set and no local work (a Read
// of the caller's request body) is under way; every byte moved re-arms it.
type idleWatch struct {
	idle   time.Duration
	cancel context.CancelCauseFunc
	err    error // the cause given to cancel

	mu      sync.Mutex
	timer   *time.Timer
	armed   time.Time // when the timer last started; zero: not running
	waiting bool
	local   int
	fired   bool
	conn    net.Conn // the request's connection, once known
	unsent  int      // its send queue when last looked at
}

// watchIdle returns ctx bound to a new watch, which starts waiting on the
// peer; the caller calls stop when the call is over.
func (c *Client) watchIdle(ctx context.Context) (context.Context, *idleWatch) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &idleWatch{
		idle:   c.idle,
		cancel: cancel,
		err: fmt.Errorf("%w: the dotmesh node at %s moved no data for %s; check that it is running (not stopped or frozen) and reachable, then run the command again: it resumes",
			dotmesh.ErrUnavailable, c.base.Redacted(), c.idle),
	}
	w.timer = time.AfterFunc(c.idle, w.fire)
	w.timer.Stop()
	w.setWaiting(true)
	return ctx, w
}

// gotConn notes the connection a call goes on, whose send queue the
// watch looks at before it fires.
func (w *idleWatch) gotConn(c net.Conn) {
	w.mu.Lock()
	w.conn, w.unsent = c, unsent(c)
	w.mu.Unlock()
}

// got1xx notes an interim answer: a node that works before it answers
// sends 102 Processing.
func (w *idleWatch) got1xx() { w.progress() }

func (w *idleWatch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	// A stale firing (re-armed or stopped meanwhile) is ignored.
	if w.armed.IsZero() || time.Since(w.armed) < w.idle {
		return
	}
	if w.conn != nil {
		// The kernel still hands buffered bytes to the peer: progress.
		if q := unsent(w.conn); q >= 0 && q < w.unsent {
			w.unsent = q
			w.armed = time.Now()
			w.timer.Reset(w.idle)
			return
		}
	}
	w.fired = true
	w.cancel(w.err)
}

// rearm (under mu) starts the countdown afresh when the call waits on the
// peer, and stops it otherwise.
func (w *idleWatch) rearm() {
	if w.waiting && w.local == 0 && !w.fired {
		w.armed = time.Now()
		w.timer.Reset(w.idle)
		if w.conn != nil {
			w.unsent = unsent(w.conn)
		}
		return
	}
	w.armed = time.Time{}
	w.timer.Stop()
}

func (w *idleWatch) setWaiting(v bool) {
	w.mu.Lock()
	w.waiting = v
	w.rearm()
	w.mu.Unlock()
}

// progress notes bytes moved.
func (w *idleWatch) progress() {
	w.mu.Lock()
	w.rearm()
	w.mu.Unlock()
}

func (w *idleWatch) localWork(delta int) {
	w.mu.Lock()
	w.local += delta
	w.rearm()
	w.mu.Unlock()
}

// stop ends the watch and releases its context.
func (w *idleWatch) stop() {
	w.mu.Lock()
	w.waiting, w.armed = false, time.Time{}
	w.timer.Stop()
	w.mu.Unlock()
	w.cancel(context.Canceled)
}

// error returns the watch's error in place of err when the watch ended the
// call.
func (w *idleWatch) error(err error) error {
	w.mu.Lock()
	fired := w.fired
	w.mu.Unlock()
	if fired && err != nil {
		return w.err
	}
	return err
}

// localBody is a request body read on this side: the time its Reads take
// is not the peer's silence.
type localBody struct {
	r io.Reader
	w *idleWatch
}

func (b *localBody) Read(p []byte) (int, error) {
	b.w.localWork(1)
	defer b.w.localWork(-1)
	return b.r.Read(p)
}

// peerBody is a response body: the peer is waited on only while a Read
// is under way. Close stops the watch.
type peerBody struct {
	rc   io.ReadCloser
	w    *idleWatch
	once sync.Once
}

func (b *peerBody) Read(p []byte) (int, error) {
	b.w.setWaiting(true)
	n, err := b.rc.Read(p)
	b.w.setWaiting(false)
	return n, b.w.error(err)
}

func (b *peerBody) Close() error {
	err := b.rc.Close()
	b.once.Do(b.w.stop)
	return err
}

// progressReader re-arms the watch on every Read of a response body read
// while the whole call waits on the peer.
type progressReader struct {
	r io.Reader
	w *idleWatch
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.w.progress()
	return n, p.w.error(err)
}

// dialer bounds connecting; TCP keep-alives find a peer that vanished
// from the network (a frozen process still answers them: the idle watch
// finds that one).
func dialer(connect time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: connect, KeepAlive: 15 * time.Second}
}

// connectError words a failure to connect within the connect timeout.
func (c *Client) connectError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" && oe.Timeout() {
		return fmt.Errorf("%w: no connection to the dotmesh node at %s within %s; check that it is running and reachable (address, port, firewall)",
			dotmesh.ErrUnavailable, c.base.Redacted(), c.connect)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && strings.Contains(err.Error(), "TLS handshake timeout") {
		return fmt.Errorf("%w: the dotmesh node at %s did not complete the TLS handshake within %s; check that it is running and serves TLS at that address",
			dotmesh.ErrUnavailable, c.base.Redacted(), c.connect)
	}
	return nil
}
