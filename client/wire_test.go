package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// These run in both builds (go test ./client and go test -tags dmlight
// ./client): the full build sends through net/http, the light one
// through client/internal/h1, and both must say the same.

// What the node receives: the method, the escaped path and query, the
// credentials, the JSON body with its length, and the headers of the
// call.
func TestWireRequest(t *testing.T) {
	type seen struct {
		method, uri, user, key, ctype, accept, list string
		length                                      int64
		body                                        string
		chunked                                     bool
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, key, _ := r.BasicAuth()
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, user, key, r.Header.Get("Content-Type"), r.Header.Get("Accept"), r.Header.Get(api.ListTableHeader), r.ContentLength, string(b), len(r.TransferEncoding) > 0}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"name":"b"}`))
	}))
	defer srv.Close()
	c := must(client.New(srv.URL+"/base", "alice", "s3cret:key"))
	ctx := context.Background()
	must(c.CreateBranch(ctx, dotmesh.DotName{Namespace: "n", Name: "d"}, "b", "master"))
	s := <-got
	if s.method != "POST" || s.uri != "/base/v1/dots/n/d/branches" || s.user != "alice" || s.key != "s3cret:key" ||
		s.ctype != "application/json" || s.accept != "application/json" || s.chunked || s.length != int64(len(s.body)) || !strings.Contains(s.body, `"name":"b"`) {
		t.Errorf("create branch sent %+v", s)
	}
	if _, err := c.ListDots(ctx); err == nil {
		t.Log("list answered") // the answer's shape is not this test's
	}
	if s = <-got; s.method != "GET" || s.uri != "/base/v1/dots" || s.length != 0 || s.body != "" {
		t.Errorf("list sent %+v", s)
	}
}

// A streamed request body goes chunked, and the node's answer is read
// while it is sent: a node that refuses before reading the body is
// heard, with its error.
func TestWireStreamedBodyRefusedEarly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("refuse") != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"no room for it","code":"conflict"}`))
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		if len(r.TransferEncoding) == 0 || r.TransferEncoding[0] != "chunked" {
			http.Error(w, "not chunked", http.StatusBadRequest)
			return
		}
		w.Write([]byte(strings.Repeat("x", int(n))))
	}))
	defer srv.Close()
	c := must(client.New(srv.URL, "", "k"))
	ctx := context.Background()

	rc, err := client.StreamForTest(c, ctx, "/v1/echo", "", bytes.NewReader(make([]byte, 100<<10)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(b) != 100<<10 {
		t.Errorf("echo of a streamed body: %d bytes, %v", len(b), err)
	}

	// A body that never ends: only the answer can end the call.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		for {
			if _, err := pw.Write(make([]byte, 32<<10)); err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := client.StreamForTest(c, ctx, "/v1/echo", "refuse=1", pr)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, dotmesh.ErrConflict) || !strings.Contains(err.Error(), "no room for it") {
			t.Errorf("a refused stream: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stream the node refused did not end")
	}
}

// Transport failures are worded alike in both builds.
func TestWireErrors(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	url := "http://" + ln.Addr().String()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 4096)
				n, _ := conn.Read(buf)
				switch {
				case bytes.Contains(buf[:n], []byte("/v1/ping")): // closed without an answer
				case bytes.Contains(buf[:n], []byte("/v1/dots ")): // an answer cut short
					conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"name\""))
				case bytes.Contains(buf[:n], []byte("/v1/me")): // no HTTP at all
					conn.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n\r\n"))
				case bytes.Contains(buf[:n], []byte("/v1/users")): // not a node
					conn.Write([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
				case bytes.Contains(buf[:n], []byte("/v1/hooks")): // slow
					time.Sleep(2 * time.Second)
				}
				conn.Close()
			}()
		}
	}()
	c := must(client.New(url, "", "k"))
	_, err = c.Ping(ctx)
	if want := "unavailable: talking to the dotmesh node at " + url + ": Get \"" + url + "/v1/ping\": EOF"; err == nil || err.Error() != want || !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Errorf("a node that closes without answering: %v, want %s", err, want)
	}
	_, err = c.ListDots(ctx)
	t.Logf("an answer cut short: %v", err)
	if err == nil || !errors.Is(err, dotmesh.ErrCorrupt) && !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Errorf("an answer cut short: %v", err)
	}
	_, err = c.Me(ctx)
	t.Logf("an answer that is not HTTP: %v", err)
	if !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Errorf("an answer that is not HTTP: %v", err)
	}
	_, err = c.Users(ctx)
	var re *api.RemoteError
	if !errors.As(err, &re) || re.Status != 404 || re.Message != "the server answered 404 Not Found: Not Found (is this a dotmesh node?)" || !errors.Is(err, dotmesh.ErrNotFound) {
		t.Errorf("a server that is not a node: %v", err)
	}
	slow := must(client.New(url, "", "k", client.WithTimeout(200*time.Millisecond)))
	start := time.Now()
	if _, err := slow.AllHooks(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("a call past WithTimeout: %v after %s", err, time.Since(start))
	}
}

// A call cancelled while its answer's body is read says so (not "use of
// a closed connection").
func TestWireCancelWhileReading(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("part"))
		w.(http.Flusher).Flush()
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := must(client.New(srv.URL, "", "k"))
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := client.StreamForTest(c, ctx, "/v1/slow", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := rc.Read(buf); !errors.Is(err, context.Canceled) {
		t.Errorf("a read cancelled: %v", err)
	}
}

// Healthz sends no key and says what a node that does not serve
// answered.
func TestHealthz(t *testing.T) {
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || r.Header.Get("Authorization") != "" {
			http.Error(w, "wrong request", http.StatusBadRequest)
			return
		}
		if down.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := client.Healthz(ctx, srv.URL, client.WithTimeout(time.Second)); err != nil {
		t.Errorf("a node that serves: %v", err)
	}
	down.Store(true)
	if err := client.Healthz(ctx, srv.URL); err == nil || err.Error() != "GET /healthz: 503 Service Unavailable" {
		t.Errorf("a node that does not serve yet: %v", err)
	}
	if err := client.Healthz(ctx, "ftp://x"); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("a bad URL: %v", err)
	}
}
