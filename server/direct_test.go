package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/internal/baresock"
)

// tcpPair is a real loopback connection: the sender's end and the
// receiver's as a directConn, whose socket a blocking reader holds as a
// file, as zfs receive does.
func tcpPair(t *testing.T, idle time.Duration) (send net.Conn, d *directConn, read <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	send, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Close() })
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc := c.(*net.TCPConn)
	d = &directConn{conn: c, tc: tc, idle: idle, log: slog.New(slog.DiscardHandler), base: baresock.Received(tc)}
	f, err := tc.File()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer f.Close()
		_, err := io.Copy(io.Discard, f)
		done <- err
	}()
	return send, d, done
}

// TestDirectWatch: the watch cuts a stream that stalls for the idle time
// or whose receive is cancelled, so that a reader holding the socket ends
// (EOF); a stream that keeps sending, however slowly, is not cut, and
// Received counts what came.
func TestDirectWatch(t *testing.T) {
	const idle = 300 * time.Millisecond
	t.Run("stalled", func(t *testing.T) {
		send, d, read := tcpPair(t, idle)
		stop := d.watch(context.Background())
		defer stop()
		start := time.Now()
		if _, err := send.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-read:
		case <-time.After(10 * idle):
			t.Fatalf("the stalled stream was not cut within %s", 10*idle)
		}
		if took := time.Since(start); took < idle || !d.stalled.Load() {
			t.Errorf("cut after %s (idle %s), stalled %v", took, idle, d.stalled.Load())
		}
		if n := d.Received(); n != 10 {
			t.Errorf("Received %d, want 10", n)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		_, d, read := tcpPair(t, time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		stop := d.watch(ctx)
		defer stop()
		cancel()
		select {
		case <-read:
		case <-time.After(5 * time.Second):
			t.Fatal("the cancelled stream was not cut")
		}
		if d.stalled.Load() {
			t.Error("a cancelled stream counted as stalled")
		}
	})
	t.Run("slow", func(t *testing.T) {
		const idle, every = 2 * time.Second, 200 * time.Millisecond
		send, d, read := tcpPair(t, idle)
		stop := d.watch(context.Background())
		for range 8 {
			if _, err := send.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(every)
		}
		stop()
		select {
		case err := <-read:
			t.Fatalf("a stream sending every %s was cut (idle %s): %v", every, idle, err)
		default:
		}
		if n := d.Received(); n != 8 {
			t.Errorf("Received %d, want 8", n)
		}
	})
}
