package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// proxy is a TCP relay in front of a real node that moves at most rate
// bytes a second in each direction, and stops moving anything (keeping
// the connections open, like a frozen process) once stall is set.
type proxy struct {
	ln    net.Listener
	to    string
	rate  int
	stall atomic.Bool
	moved atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, to string, rate int) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err)
	p := &proxy{ln: ln, to: to, rate: rate}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.to)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.relay(out, in)
		go p.relay(in, out)
	}
}

// relay copies in slices of rate/20 bytes every 50 ms.
func (p *proxy) relay(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, max(p.rate/20, 1))
	for {
		n, err := src.Read(buf)
		for p.stall.Load() {
			time.Sleep(10 * time.Millisecond)
			if p.closed() {
				return
			}
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			p.moved.Add(int64(n))
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

func (p *proxy) closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns == nil
}

// cut closes the connections relayed so far, as a receiver that dies
// does.
func (p *proxy) cut() {
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = p.conns[:0]
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestIdleTimeoutCutsAStalledPeer: a peer that stops moving bytes
// mid-stream (the relay keeps its connections open, as a frozen process
// does) fails SendCommit within the idle timeout, with an error that
// names the peer and says what to do.
func TestIdleTimeoutCutsAStalledPeer(t *testing.T) {
	app, c, stream := committedStream(t, 8<<20)
	b := servertest.Start(t)
	p := startProxy(t, b.Server.Listener.Addr().String(), 1<<30)
	const idle = time.Second
	cb, err := client.New("http://"+p.addr(), "", b.Key, client.WithIdleTimeout(idle))
	noErr(t, err)
	data := &stallAfter{r: strings.NewReader(string(stream)), at: len(stream) / 2, p: p}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- cb.SendCommit(context.Background(), app, "master", c, nil, dotmesh.FormatNative+"dump", data)
	}()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("SendCommit to a stalled peer did not end in 30s")
	}
	took := time.Since(start)
	t.Logf("after %s: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), p.addr()) || !strings.Contains(err.Error(), "running") {
		t.Fatalf("want an unavailable error naming %s and what to check, got %v", p.addr(), err)
	}
	if took > idle+5*time.Second {
		t.Fatalf("took %s with a %s idle timeout", took, idle)
	}
}

// stallAfter stalls its proxy once at bytes have been read from r.
type stallAfter struct {
	r    io.Reader
	at   int
	read int
	p    *proxy
}

func (s *stallAfter) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	s.read += n
	if s.read >= s.at {
		s.p.stall.Store(true)
	}
	return n, err
}

// TestIdleTimeoutSparesASlowTransfer: a push through a relay slowed to
// 1 MiB/s runs for several times the idle timeout and succeeds, as bytes
// keep moving; so does a data source that is slower than the timeout
// between some of its reads (local work does not count).
func TestIdleTimeoutSparesASlowTransfer(t *testing.T) {
	app, c, stream := committedStream(t, 5<<20)
	b := servertest.Start(t)
	p := startProxy(t, b.Server.Listener.Addr().String(), 1<<20)
	const idle = time.Second
	cb, err := client.New("http://"+p.addr(), "", b.Key, client.WithIdleTimeout(idle))
	noErr(t, err)
	start := time.Now()
	err = cb.SendCommit(context.Background(), app, "master", c, nil, dotmesh.FormatNative+"dump", strings.NewReader(string(stream)))
	took := time.Since(start)
	noErr(t, err)
	if took < 3*idle {
		t.Fatalf("the slowed push took %s; the relay did not slow it (moved %d bytes)", took, p.moved.Load())
	}
	t.Logf("slow push of %d bytes took %s with a %s idle timeout", len(stream), took.Round(time.Millisecond), idle)

	// A source that pauses longer than the idle timeout.
	b2 := servertest.Start(t)
	cb2, err := client.New(b2.URL, "", b2.Key, client.WithIdleTimeout(idle))
	noErr(t, err)
	slow := &pausingReader{r: strings.NewReader(string(stream)), every: len(stream) / 3, pause: 2 * idle}
	noErr(t, cb2.SendCommit(context.Background(), app, "master", c, nil, dotmesh.FormatNative+"dump", slow))
	if slow.pauses < 2 {
		t.Fatalf("the source paused %d times", slow.pauses)
	}
}

// pausingReader sleeps for pause each time another every bytes were read.
type pausingReader struct {
	r            io.Reader
	every, since int
	pause        time.Duration
	pauses       int
}

func (p *pausingReader) Read(b []byte) (int, error) {
	if p.since >= p.every {
		time.Sleep(p.pause)
		p.since = 0
		p.pauses++
	}
	n, err := p.r.Read(b)
	p.since += n
	return n, err
}

// TestConnectTimeout: a listener whose accept queue is full drops new
// connection attempts; the client gives up after its connect timeout with
// an error that names the address.
func TestConnectTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	noErr(t, err)
	defer syscall.Close(fd)
	noErr(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	noErr(t, syscall.Listen(fd, 0)) // never accepted
	sa, err := syscall.Getsockname(fd)
	noErr(t, err)
	addr := net.JoinHostPort("127.0.0.1", itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the accept queue.
	var fill []net.Conn
	defer func() {
		for _, c := range fill {
			c.Close()
		}
	}()
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		fill = append(fill, c)
	}
	const connect = 500 * time.Millisecond
	c, err := client.New("http://"+addr, "", "k", client.WithConnectTimeout(connect))
	noErr(t, err)
	start := time.Now()
	_, err = c.State(context.Background(), dotmesh.DotName{Namespace: "admin", Name: "x"}, "master", dotmesh.StateOptions{})
	took := time.Since(start)
	t.Logf("after %s: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "reachable") {
		t.Fatalf("want an unavailable error naming %s, got %v", addr, err)
	}
	if took > connect+3*time.Second {
		t.Fatalf("took %s with a %s connect timeout", took, connect)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestTransferKeepsAlive: a node sends keep-alive lines while a transfer
// runs, so a client idle timeout shorter than a silent phase of the
// transfer (here: a peer slowed to a crawl) does not cut it.
func TestTransferKeepsAlive(t *testing.T) {
	ctx := context.Background()
	a, b := servertest.Start(t), servertest.Start(t)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	writeCommit(t, a, app, 512<<10)
	// The peer moves 64 KiB/s: the 512 KiB stream, under the 1 MiB
	// between progress reports, takes 8 s without a progress line.
	p := startProxy(t, b.Server.Listener.Addr().String(), 64<<10)
	ca, err := client.New(a.URL, "", a.Key, client.WithIdleTimeout(2*api.TransferKeepAlive))
	noErr(t, err)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req := api.TransferRequest{Op: "push", Dot: "app", Remote: api.TransferRemote{Name: "b", URL: "http://" + p.addr(), APIKey: b.Key}}
	start := time.Now()
	_, err = ca.Transfer(ctx, req, nil)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the transfer failed after %s: %v", took, err)
	}
	if took < 3*api.TransferKeepAlive {
		t.Fatalf("the transfer took only %s (err %v): the relay did not slow it", took, err)
	}
	t.Logf("transfer through a 64 KiB/s relay: %s, err %v", took.Round(time.Millisecond), err)
}
