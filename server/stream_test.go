package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// callNDJSON sends one request asking for a streamed answer and returns
// the status, the content type and the answer's lines.
func callNDJSON(t *testing.T, n *servertest.Node, a auth, method, path, body string) (int, string, [][]byte) {
	t.Helper()
	req, err := http.NewRequest(method, n.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", api.NDJSON)
	a(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines [][]byte
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), lines
}

// lastEvent checks that every line is a progress event and returns the
// last, which must carry the status and a result or an error.
func lastEvent(t *testing.T, what string, lines [][]byte) (api.ProgressEvent, []dotmesh.Progress) {
	t.Helper()
	var ps []dotmesh.Progress
	var ev api.ProgressEvent
	for i, l := range lines {
		ev = api.ProgressEvent{}
		if err := json.Unmarshal(l, &ev); err != nil {
			t.Fatalf("%s: line %d: %v: %s", what, i+1, err, l)
		}
		last := i == len(lines)-1
		if (ev.Status != 0) != last {
			t.Fatalf("%s: line %d of %d has status %d: %s", what, i+1, len(lines), ev.Status, l)
		}
		if ev.Progress != nil {
			ps = append(ps, *ev.Progress)
		}
	}
	if len(lines) == 0 || (ev.Result == nil) == (ev.Error == nil) {
		t.Fatalf("%s: no last line with a result or an error: %q", what, lines)
	}
	return ev, ps
}

// A streamed long call ends with the status and body the plain call
// answers; a refused one streams nothing and answers as plainly as ever.
func TestStreamedLongCalls(t *testing.T) {
	n := servertest.Start(t)
	admin := basic(api.AdminUser, n.Key)
	var d dotmesh.Dot
	ok(t, n, 201, "POST", "/v1/dots", `{"name":"web"}`, &d)
	var pr api.PathResponse
	ok(t, n, 200, "POST", "/v1/path", `{"volume":"web.db"}`, &pr)
	if err := os.WriteFile(filepath.Join(pr.Path, "data"), bytes.Repeat([]byte("x"), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}

	// A commit: progress, then the commit as the plain call answers it.
	status, ctype, lines := callNDJSON(t, n, admin, "POST", "/v1/dots/admin/web/commits", `{"message":"first"}`)
	if status != 200 || ctype != api.NDJSON {
		t.Fatalf("streamed commit: status %d, content type %q", status, ctype)
	}
	ev, ps := lastEvent(t, "commit", lines)
	if ev.Status != http.StatusCreated || ev.Error != nil {
		t.Fatalf("commit's last line: %+v", ev)
	}
	var c dotmesh.Commit
	if err := json.Unmarshal(ev.Result, &c); err != nil || c.Message != "first" || c.ID == "" {
		t.Fatalf("commit's result %s: %v", ev.Result, err)
	}
	var hashed bool
	for _, p := range ps {
		hashed = hashed || (p.Phase == "hashing" && p.Bytes == 3<<20 && p.Total == 3<<20)
	}
	if !hashed {
		t.Fatalf("commit's progress lacks hashing to 100%%: %+v", ps)
	}
	var same dotmesh.Commit
	ok(t, n, 200, "GET", "/v1/dots/admin/web/refs/HEAD", "", &same)
	if plain, _ := json.Marshal(same); !bytes.Equal(plain, ev.Result) {
		t.Fatalf("streamed commit %s, the node has %s", ev.Result, plain)
	}
	// The audit reads the streamed answer as it reads the plain one.
	recs, _, err := n.Node.Audit().List(context.Background(), dotmesh.AuditQuery{Limit: 1})
	if err != nil || len(recs) != 1 || recs[0].Action != "commit" || recs[0].Commit != string(c.ID) || recs[0].Branch != "master" {
		t.Fatalf("audit after a streamed commit: %+v, %v", recs, err)
	}

	// Calls that change nothing answer the same either way.
	for _, q := range []struct{ path, body string }{
		{"/v1/verify", `{}`},
		{"/v1/gc", `{"dry_run":true}`},
		{"/v1/dots/admin/web/commits", `{"message":"again"}`}, // nothing to commit: an error
		{"/v1/dots/admin/web/reset", `{"ref":"nosuch"}`},
	} {
		plainStatus, plain := call(t, n, admin, "POST", q.path, q.body)
		_, _, lines := callNDJSON(t, n, admin, "POST", q.path, q.body)
		ev, _ := lastEvent(t, q.path, lines)
		got := []byte(ev.Result)
		if ev.Error != nil {
			ev.Error.RequestID = "" // differs by request
			got, _ = json.Marshal(ev.Error)
			var e api.Error
			_ = json.Unmarshal(plain, &e)
			e.RequestID = ""
			plain, _ = json.Marshal(e)
		}
		if ev.Status != plainStatus || !bytes.Equal(bytes.TrimSpace(plain), got) {
			t.Errorf("POST %s: streamed %d %s; plain %d %s", q.path, ev.Status, got, plainStatus, plain)
		}
	}

	// Refused before it starts: the plain error, no stream.
	_, _, bobKey, err := n.Node.Users().Add(context.Background(), "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct{ path, body string }{
		{"/v1/dots/admin/web/commits", `{"message":"mine"}`},
		{"/v1/verify", `{}`},
		{"/v1/gc", `{}`},
		{"/v1/dots/admin/web/reset", `{"ref":"HEAD"}`},
	} {
		status, ctype, lines := callNDJSON(t, n, basic("bob", bobKey), "POST", q.path, q.body)
		if status != http.StatusForbidden && status != http.StatusNotFound {
			t.Errorf("bob's POST %s: status %d: %q", q.path, status, lines)
			continue
		}
		var e api.Error
		if ctype != "application/json" || len(lines) != 1 || json.Unmarshal(lines[0], &e) != nil || e.Error == "" {
			t.Errorf("bob's POST %s: %s %q", q.path, ctype, lines)
		}
	}
}
