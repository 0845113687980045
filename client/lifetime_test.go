package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// stallingReader serves data until at bytes have gone, then blocks in Read
// until release is closed, like a source waiting on its disk; it records whether a
// Read is in flight and every Read made.
type stallingReader struct {
	data     []byte
	at       int
	off      int
	stalled  chan struct{} // closed when a Read blocks at at
	release  chan struct{}
	once     sync.Once
	inFlight atomic.Int32
	reads    atomic.Int64
}

func newStallingReader(data []byte, at int) *stallingReader {
	return &stallingReader{data: data, at: at, stalled: make(chan struct{}), release: make(chan struct{})}
}

func (s *stallingReader) Read(p []byte) (int, error) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.reads.Add(1)
	if s.off >= s.at {
		s.once.Do(func() { close(s.stalled) })
		<-s.release
	}
	if s.off >= len(s.data) {
		return 0, io.EOF
	}
	n := copy(p, s.data[s.off:])
	if s.off < s.at {
		n = min(n, s.at-s.off)
	}
	s.off += n
	return n, nil
}

// writeCommit commits size random bytes to a new dot on n.
func writeCommit(t *testing.T, n *servertest.Node, app dotmesh.DotName, size int) *dotmesh.Commit {
	return writeCommitSeed(t, n, app, size, 7)
}

func writeCommitSeed(t *testing.T, n *servertest.Node, app dotmesh.DotName, size int, seed byte) *dotmesh.Commit {
	t.Helper()
	ctx := context.Background()
	_, err := n.Node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	noErr(t, err)
	p, err := n.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	noErr(t, err)
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{seed}).Read(data)
	noErr(t, os.WriteFile(filepath.Join(p, "f"), data, 0o644))
	c, err := n.Node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", Author: "t"})
	noErr(t, err)
	return c
}

// committedStream commits size random bytes on a fresh node and returns
// the dot, the commit and its native stream.
func committedStream(t *testing.T, size int) (dotmesh.DotName, dotmesh.Commit, []byte) {
	t.Helper()
	a := servertest.Start(t)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	c := writeCommit(t, a, app, size)
	var stream bytes.Buffer
	noErr(t, a.Node.TransferPeer().Send(context.Background(), app, c.ID, nil, dotmesh.FormatNative+"dump", &stream))
	return app, *c, stream.Bytes()
}

// TestSendCommitOwnsItsReader: SendCommit returns only when nothing reads
// its data any more, also when the receiver's connection is cut or the
// caller gives up while a Read of data is still blocked (the crash of
// issue 15: the sender's progress callback, called from such a Read,
// flushed a response whose handler had returned).
func TestSendCommitOwnsItsReader(t *testing.T) {
	app, c, stream := committedStream(t, 8<<20)
	for _, how := range []string{"connection cut", "context cancelled"} {
		t.Run(how, func(t *testing.T) {
			b := servertest.Start(t)
			cb, err := client.New(b.URL, "", b.Key)
			noErr(t, err)
			data := newStallingReader(stream, len(stream)/2)
			var released sync.Once
			release := func() { released.Do(func() { close(data.release) }) }
			defer release()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type ret struct {
				err      error
				inFlight int32
				reads    int64
			}
			done := make(chan ret, 1)
			go func() {
				err := cb.SendCommit(ctx, app, "master", c, nil, dotmesh.FormatNative+"dump", data)
				done <- ret{err, data.inFlight.Load(), data.reads.Load()}
			}()
			select {
			case <-data.stalled:
			case r := <-done:
				t.Fatalf("SendCommit ended before its data stalled: %v", r.err)
			case <-time.After(time.Minute):
				t.Fatal("the data never stalled")
			}
			if how == "connection cut" {
				// The client may have written half the stream into the
				// kernel's buffers before the server accepted the
				// connection; a cut before then closes nothing. The
				// receive's record shows the handler is reading.
				waitReceiving(t, b)
				b.Server.CloseClientConnections()
			} else {
				cancel()
			}
			var r ret
			select {
			case r = <-done:
				t.Fatalf("SendCommit returned (err %v) while a Read of its data was still running (%d in flight)", r.err, r.inFlight)
			case <-time.After(300 * time.Millisecond):
				// Still inside the Read the caller's source blocks: right.
			}
			release()
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("SendCommit did not return once its data's Read returned")
			}
			if r.err == nil {
				t.Fatal("SendCommit succeeded although the request was cut")
			}
			if r.inFlight != 0 {
				t.Fatalf("SendCommit returned with %d Reads of its data in flight", r.inFlight)
			}
			time.Sleep(100 * time.Millisecond)
			if n := data.reads.Load(); n != r.reads {
				t.Fatalf("data was read %d more times after SendCommit returned", n-r.reads)
			}
			if how == "context cancelled" && !errors.Is(r.err, context.Canceled) {
				t.Fatalf("cancelled SendCommit: %v", r.err)
			}
			t.Logf("%s: %v", how, r.err)
		})
	}
}

// waitReceiving waits until n records an incoming transfer.
func waitReceiving(t *testing.T, n *servertest.Node) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		in, err := n.Node.TransferPeer().Incoming(context.Background())
		noErr(t, err)
		if len(in) > 0 {
			return
		}
	}
	t.Fatal("the receiver never recorded the incoming transfer")
}

// TestPushCutOffRepeatedly runs pushes between two served nodes and cuts
// them off mid-stream, by closing the connections to the receiver and by
// cancelling the client's call, many times: each push ends with an error,
// the sending node keeps serving (a crash of its server would end this
// test binary) and no SendCommit of it is left running.
func TestPushCutOffRepeatedly(t *testing.T) {
	a, b := servertest.Start(t), servertest.Start(t)
	// The relay slows the stream so that a cut lands in its middle.
	p := startProxy(t, b.Server.Listener.Addr().String(), 16<<20)
	ca, err := client.New(a.URL, "", a.Key)
	noErr(t, err)
	runs := 12
	if testing.Short() {
		runs = 4
	}
	for i := range 2 * runs {
		how := []string{"receiver cut off", "client cancelled"}[i%2]
		ctx, cancel := context.WithCancel(context.Background())
		var once sync.Once
		cut := func(pr dotmesh.Progress) {
			if pr.Bytes > 0 {
				once.Do(func() {
					if how == "client cancelled" {
						cancel()
					} else {
						p.cut()
					}
				})
			}
		}
		// New data each time: b holds no chunk of it, so the push streams.
		name := fmt.Sprintf("app-%d", i)
		writeCommitSeed(t, a, dotmesh.DotName{Namespace: "admin", Name: name}, 12<<20, byte(i+10))
		req := api.TransferRequest{Op: "push", Dot: name, Remote: api.TransferRemote{URL: "http://" + p.addr(), APIKey: b.Key}}
		_, err := ca.Transfer(ctx, req, cut)
		cancel()
		if err == nil {
			t.Fatalf("run %d (%s): the push succeeded although it was cut off", i, how)
		}
		if i < 2 {
			t.Logf("%s: %v", how, err)
		}
	}
	if _, err := ca.Ping(context.Background()); err != nil {
		t.Fatalf("the sending node does not answer after the cut pushes: %v", err)
	}
	// What a cut push started on a ends with it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "client.(*Client).SendCommit") && !strings.Contains(stacks, "server.(*server).runTransfer") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a cut push is still running on the sending node:\n%s", stacks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
