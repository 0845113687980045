package client_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A receiver that takes the direct stream and never answers: a cancelled
// push ends promptly, although send handed the socket to a real command
// (exec's f.Fd() puts the shared socket in blocking mode, where closing
// the conn would not wake the read of the answer).
func TestSendCommitDirectCancelWhileWaiting(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+api.DirectProtocol+"\r\n\r\n")
		go func() { _, _ = io.Copy(io.Discard, bufio.NewReader(brw)) }()
		<-hold // no answer
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "", "key")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	base := dotmesh.CommitID("b")
	cm := dotmesh.Commit{ID: "c", Message: "m", Time: time.Unix(1, 0)}
	done := make(chan error, 1)
	sent := make(chan struct{})
	go func() {
		_, handled, err := c.SendCommitDirect(ctx, dotmesh.DotName{Name: "app"}, "master", cm, &base, "native:zfs", func(f *os.File) error {
			defer close(sent)
			cmd := exec.Command("printf", "stream")
			cmd.Stdout = f
			return cmd.Run()
		})
		if !handled && err == nil {
			err = errNotHandled
		}
		done <- err
	}()
	select {
	case <-sent:
	case err := <-done:
		t.Fatalf("ended before sending: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("send was not called in 10 s")
	}
	time.Sleep(50 * time.Millisecond) // into the read of the answer
	cancel()
	select {
	case err := <-done:
		if err == nil || err == errNotHandled {
			t.Fatalf("a cancelled direct send returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled direct send still waits for the answer after 5 s")
	}
}

var errNotHandled = errors.New("not handled")
