package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/syncbuf"
	"github.com/dotmesh-io/dotmesh/metrics"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// startOps serves a node with the metrics and the profiler on, logging
// JSON at DEBUG into buf.
// The node logs there too, through server.LogHandler as the daemon's
// does, and tells obs (may be nil) what it does.
func startOps(t *testing.T, buf *syncbuf.Buffer, obs dotmesh.Observer, opts server.Options) *servertest.Node {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(server.LogHandler(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	node, _ := servertest.OpenNodeWith(t, dir, log, obs)
	t.Cleanup(func() { node.Close() })
	key, _, err := server.EnsureAdminKey(context.Background(), node, dir)
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = log
	srv := httptest.NewServer(server.New(node, opts))
	t.Cleanup(srv.Close)
	return &servertest.Node{Node: node, Key: key, URL: srv.URL}
}

// The metrics and the profiler answer the admin (a read-only admin key
// too) and refuse everybody else; switched off they do not exist.
func TestOpsRoutesAdminOnly(t *testing.T) {
	var buf syncbuf.Buffer
	m := metrics.New(metrics.Options{Version: "test"})
	n := startOps(t, &buf, m, server.Options{Metrics: m.Handler(), Profiler: true})
	m.Watch(n.Node)
	ctx := context.Background()
	_, _, bobKey, err := n.Node.Users().Add(ctx, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	_, roKey, err := n.Node.APIKeys().Issue(ctx, api.AdminUser, "prometheus", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap?debug=1"} {
		for _, c := range []struct {
			who  string
			a    auth
			want int
		}{
			{"nobody", noAuth, 401},
			{"a wrong key", basic(api.AdminUser, "wrong"), 401},
			{"bob", basic("bob", bobKey), 403},
			{"the admin", basic(api.AdminUser, n.Key), 200},
			{"a read-only admin key", bearer(roKey), 200},
		} {
			status, body := call(t, n, c.a, "GET", path, "")
			if status != c.want {
				t.Errorf("GET %s as %s: status %d, want %d: %.200s", path, c.who, status, c.want, body)
			}
			if status == 200 && path == "/metrics" && !bytes.Contains(body, []byte("dotmesh_build_info{")) {
				t.Errorf("GET /metrics as %s lacks dotmesh_build_info:\n%.500s", c.who, body)
			}
		}
	}

	off := startOps(t, &buf, nil, server.Options{})
	for _, path := range []string{"/metrics", "/debug/pprof/"} {
		if status, body := call(t, off, basic(api.AdminUser, off.Key), "GET", path, ""); status != 404 {
			t.Errorf("GET %s without the option: status %d, want 404: %s", path, status, body)
		}
	}
}

// logLines decodes every JSON log line in s.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("a log line is not JSON: %v: %s", err, l)
		}
		out = append(out, m)
	}
	return out
}

// One request's id: the client's when sane, else a new one; in the
// answer's header, its error body, and every log line of the request,
// the engine's too.
func TestRequestID(t *testing.T) {
	var buf syncbuf.Buffer
	n := startOps(t, &buf, nil, server.Options{})
	do := func(id, method, path, body string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, n.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(api.AdminUser, n.Key)
		if id != "" {
			req.Header.Set(api.RequestIDHeader, id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	// gc logs from the engine with the request's context.
	resp, _ := do("gc-run.1", "POST", "/v1/gc", `{"keep":0}`)
	if resp.StatusCode != 200 || resp.Header.Get(api.RequestIDHeader) != "gc-run.1" {
		t.Fatalf("POST /v1/gc: status %d, request id %q", resp.StatusCode, resp.Header.Get(api.RequestIDHeader))
	}
	msgs := map[string]bool{}
	for _, l := range logLines(t, buf.String()) {
		if l["request_id"] == "gc-run.1" {
			msgs[l["msg"].(string)] = true
		}
	}
	if !msgs["gc"] || !msgs["http request"] {
		t.Errorf("the engine's gc line and the request line should carry the request id; lines with it: %v\n%s", msgs, buf.String())
	}

	// An insane id is replaced; the error body names the id used.
	resp, body := do("bad id with spaces", "GET", "/v1/dots/admin/missing", "")
	id := resp.Header.Get(api.RequestIDHeader)
	if resp.StatusCode != 404 || id == "" || strings.Contains(id, " ") {
		t.Fatalf("GET a missing dot: status %d, request id %q", resp.StatusCode, id)
	}
	var e api.Error
	if err := json.Unmarshal(body, &e); err != nil || e.RequestID != id {
		t.Errorf("the error body's request_id is %q, want %q (%v): %s", e.RequestID, id, err, body)
	}
	var found bool
	for _, l := range logLines(t, buf.String()) {
		if l["request_id"] == id {
			found = true
			if l["level"] != "WARN" || l["status"] != float64(404) || l["err"] == nil {
				t.Errorf("a 404 is logged at WARN with its status and error: %v", l)
			}
		}
	}
	if !found {
		t.Errorf("no log line carries request id %s:\n%s", id, buf.String())
	}
}

// A transfer whose NDJSON answer started with 200 and then failed is
// logged as the failure it is: at the level of its error's status, with
// that status and the error, never at INFO.
func TestFailedTransferLoggedAsFailure(t *testing.T) {
	var buf syncbuf.Buffer
	n := startOps(t, &buf, nil, server.Options{})
	ok(t, n, 201, "POST", "/v1/dots", `{"name":"web"}`, nil)
	ok(t, n, 201, "POST", "/v1/dots/admin/web/commits", `{"message":"one","allow_empty":true}`, nil)
	// Port 1 on loopback: nothing listens, so the peer is unavailable.
	req := `{"op":"push","dot":"web","remote":{"name":"gone","url":"http://127.0.0.1:1","api_key":"k","connect_timeout_ms":2000}}`
	status, body := call(t, n, basic(api.AdminUser, n.Key), "POST", "/v1/transfers", req)
	if status != 200 || !bytes.Contains(body, []byte(`"error"`)) {
		t.Fatalf("the push should answer 200 and end with its error: %d %s", status, body)
	}
	var last api.TransferEvent
	lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil || last.Error == nil || last.Error.RequestID == "" {
		t.Errorf("the transfer's error event should carry the request id: %v %s", err, lines[len(lines)-1])
	}
	var line map[string]any
	for _, l := range logLines(t, buf.String()) {
		if l["msg"] == "http request" && l["path"] == "/v1/transfers" {
			line = l
		}
	}
	if line == nil {
		t.Fatalf("no request line for the transfer:\n%s", buf.String())
	}
	if line["level"] != "ERROR" && line["level"] != "WARN" || line["err"] == nil || line["error_status"] == nil || line["status"] != float64(200) {
		t.Errorf("the failed transfer is logged as %v; want WARN or ERROR with error_status and err", line)
	}
	if last.Error != nil && line["request_id"] != last.Error.RequestID {
		t.Errorf("the log line's request id %v is not the error event's %q", line["request_id"], last.Error.RequestID)
	}
}
