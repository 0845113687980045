package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// A direct client does what a pooled one does against a real node.
func TestDirectAgainstServer(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	c := must(client.New(n.URL, "", n.Key, client.WithDirect()))
	if p := must(c.Ping(ctx)); p.User != api.AdminUser {
		t.Errorf("ping = %+v", p)
	}
	web := dotmesh.DotName{Name: "web"}
	must(c.CreateDot(ctx, web, "files"))
	if _, err := c.CreateDot(ctx, web, "files"); !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Errorf("a second create: %v", err)
	}
	for range 3 {
		if dots := must(c.ListDots(ctx)); len(dots) != 1 {
			t.Fatalf("listed %d dots", len(dots))
		}
	}
}

// GETs share one kept connection, a POST takes a new one, and a GET on a
// connection the server closed goes again on a new one.
func TestDirectConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("close") != "" {
			w.Header().Set("Connection", "close")
		}
		if r.Method == http.MethodPost {
			w.Write([]byte(`{}`))
			return
		}
		w.Write([]byte(`[]`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := must(client.New(srv.URL, "", "key", client.WithDirect()))
	ctx := context.Background()
	for range 3 {
		must(c.ListDots(ctx))
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("three GETs used %d connections, want 1", got)
	}
	must(c.CreateDot(ctx, dotmesh.DotName{Name: "x"}, ""))
	if got := conns.Load(); got != 2 {
		t.Errorf("a POST after them made %d connections in all, want 2", got)
	}
	must(c.ListDots(ctx))
	srv.CloseClientConnections() // the kept connection dies under the client
	must(c.ListDots(ctx))
	if got := conns.Load(); got != 3 {
		t.Errorf("a GET on a closed kept connection: %d connections in all, want 3", got)
	}
}

// Cancelling a call's context ends it at once, and a node that does not
// run is reported as by the pooled client.
func TestDirectCancelAndRefused(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := must(client.New(srv.URL, "", "key", client.WithDirect()))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.ListDots(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a cancelled call: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a cancelled call took %s", d)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	c = must(client.New(url, "", "key", client.WithDirect()))
	if _, err := c.Ping(context.Background()); !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), "no dotmesh node answers at "+url) {
		t.Errorf("no server: %v", err)
	}
}

// A 102 Processing before the answer is skipped, as http.Transport skips
// it, and re-arms the idle watch of a transfer call: a node that works
// longer than the idle timeout but says so is waited for.
func TestDirectInterim(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 5 {
			w.WriteHeader(http.StatusProcessing) // sent at once, as server.keepAlive's
			time.Sleep(60 * time.Millisecond)
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/transfer") {
			w.Write([]byte(`{}`))
			return
		}
		w.Write([]byte(`{"user":"admin"}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, direct := range []bool{false, true} {
		opts := []client.Option{client.WithIdleTimeout(150 * time.Millisecond)}
		if direct {
			opts = append(opts, client.WithDirect())
		}
		c := must(client.New(srv.URL, "", "k", opts...))
		if p, err := c.Ping(ctx); err != nil || p.User != "admin" {
			t.Errorf("direct=%v: ping = %+v, %v", direct, p, err)
		}
		if _, err := c.State(ctx, dotmesh.DotName{Name: "web"}, "master", dotmesh.StateOptions{}); err != nil {
			t.Errorf("direct=%v: state: %v", direct, err)
		}
	}
}

// A node that takes a direct request but never answers it is given up on
// after the idle time: not handled, so the framed stream goes (and its
// own idle watch reports the node).
func TestDirectSilentNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			go io.Copy(io.Discard, conn)
		}
	}()
	const idle = 200 * time.Millisecond
	c := must(client.New("http://"+ln.Addr().String(), "", "key", client.WithIdleTimeout(idle)))
	base := dotmesh.NewCommitID()
	cm := dotmesh.Commit{ID: dotmesh.NewCommitID(), Parent: base}
	start := time.Now()
	if _, handled, err := c.SendCommitDirect(context.Background(), dotmesh.DotName{Namespace: "admin", Name: "app"}, "master", cm, &base, "native:zfs", func(*os.File) error {
		t.Error("a node that did not answer 101 got the stream")
		return nil
	}); handled || err != nil {
		t.Errorf("a silent node: handled %v, %v", handled, err)
	}
	if d := time.Since(start); d < idle || d > 10*idle {
		t.Errorf("a silent node was given up on after %s; want the idle time, %s", d, idle)
	}
}
