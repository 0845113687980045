package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	t.Helper()
	ctx := context.Background()
	_, err := n.Node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	noErr(t, err)
	p, err := n.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	noErr(t, err)
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{7}).Read(data)
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
	noErr(t, a.Node.SendCommitStream(context.Background(), app, c.ID, nil, dotmesh.FormatNative+"dump", &stream))
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
