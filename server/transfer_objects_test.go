package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// TestHaveWantBadInput: a peer's bad have/want requests get a one-line
// 400 (413 when too large), need the key, and change nothing.
func TestHaveWantBadInput(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	web := dotmesh.DotName{Namespace: "admin", Name: "web"}
	_, err := n.Node.CreateDot(ctx, web, dotmesh.CreateDotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := n.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: web})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := n.Node.Commit(ctx, web, "", dotmesh.CommitOptions{Message: "one", Author: "t"})
	if err != nil {
		t.Fatal(err)
	}
	cid := string(c.ID)
	have := "/v1/dots/admin/web/transfer/have?branch=master"
	objects := "/v1/dots/admin/web/transfer/commits/" + cid + "/objects?format=native:dump"
	fetch := "/v1/dots/admin/web/transfer/commits/" + cid + "/fetch"
	hreq := func(ids ...string) string {
		b, _ := json.Marshal(map[string]any{"commit": cid, "format": "native:dump", "ids": ids})
		return string(b)
	}
	many := make([]string, dotmesh.MaxObjectBatch+1)
	for i := range many {
		many[i] = "ab"
	}

	// The object list works, and gives what the filter must match.
	var page api.ObjectsPage
	ok(t, n, 200, "GET", objects, "", &page)
	if page.Total == 0 || page.Total != len(page.IDs) || page.Digest != dotmesh.ObjectListDigest(page.IDs) {
		t.Fatalf("object list: %+v", page)
	}
	var hr api.HaveResponse
	ok(t, n, 200, "POST", have, hreq(string(page.IDs[0]), strings.Repeat("0", 64)), &hr)
	if len(hr.Have) != 1 || hr.Have[0] != 1 {
		t.Fatalf("have answer %v, want bit 0 only", hr.Have)
	}

	cases := []struct {
		method, path, body string
		status             int
		code, want         string
	}{
		{"POST", have, hreq(many...), 400, "invalid_argument", "limit"},
		{"POST", have, hreq("zz"), 400, "invalid_argument", "hex"},
		{"POST", have, hreq("ABCD"), 400, "invalid_argument", "hex"},
		{"POST", have, hreq("../../x"), 400, "invalid_argument", "object id"},
		{"POST", have, `{"commit":"` + cid + `","format":"native:dump","ids":"ab"}`, 400, "invalid_argument", "ids"},
		{"POST", have, `{"commit":"` + cid + `","format":"native:dump","ids":[],"more":1}`, 400, "invalid_argument", `unknown field "more"`},
		{"POST", have, `{"commit":"../x","format":"native:dump","ids":["ab"]}`, 400, "invalid_name", "commit"},
		{"POST", have, `{"commit":"` + cid + `","format":"native:zfs/../x","ids":["ab"]}`, 400, "invalid_argument", "format"},
		{"POST", have, `{"commit":"` + cid + `","format":"neutral","ids":["ab"]}`, 501, "not_supported", "objects"},
		{"POST", have, `{"commit":"` + cid + `","format":"native:dump","ids":["` + strings.Repeat("ab", 600000) + `"]}`, 413, "invalid_argument", "limit"},
		{"POST", "/v1/dots/admin/web/transfer/have?branch=a%20b", hreq("ab"), 400, "invalid_name", "branch"},
		{"GET", objects + "&offset=-1", "", 400, "invalid_argument", "offset"},
		{"GET", objects + "&offset=x", "", 400, "invalid_argument", "offset"},
		{"GET", objects + "&offset=999999", "", 400, "invalid_argument", "past"},
		{"POST", fetch, `{"format":"native:dump"}`, 400, "invalid_argument", "filter"},
		{"POST", fetch, `{"format":"native:dump","filter":{"count":9,"digest":"` + page.Digest + `","have":"AA=="}}`, 400, "invalid_argument", "bitmap"},
		{"POST", fetch, `{"format":"native:dump","filter":{"count":2,"digest":"` + page.Digest + `","have":"BA=="}}`, 400, "invalid_argument", "bits set past"},
		{"POST", fetch, `{"format":"native:dump","filter":{"count":1,"digest":"nothex","have":"AA=="}}`, 400, "invalid_argument", "digest"},
		{"POST", fetch, `{"format":"native:dump","filter":{"count":-1,"digest":"` + page.Digest + `","have":""}}`, 400, "invalid_argument", "limit"},
		{"POST", fetch, `{"format":"native:dump","filter":{"count":` + itoa(page.Total) + `,"digest":"` + strings.Repeat("0", 64) + `","have":"` + zeros(page.Total) + `"}}`, 400, "invalid_argument", "another object list"},
	}
	for _, c := range cases {
		status, b := call(t, n, basic(api.AdminUser, n.Key), c.method, c.path, c.body)
		msg := checkError(t, c.method+" "+c.path+" "+clip(c.body), status, b, c.status, c.code)
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s %s %s: message %q does not contain %q", c.method, c.path, clip(c.body), msg, c.want)
		}
	}
	// Every call needs the key.
	for _, c := range []struct{ method, path, body string }{{"POST", have, hreq("ab")}, {"GET", objects, ""}, {"POST", fetch, `{}`}} {
		status, b := call(t, n, basic(api.AdminUser, "wrong"), c.method, c.path, c.body)
		checkError(t, "wrong key "+c.path, status, b, 401, "unauthorized")
	}
	// Nothing changed: one dot, nothing staged, nothing pinned.
	var list []dotmesh.DotStatus
	ok(t, n, 200, "GET", "/v1/dots", "", &list)
	if len(list) != 1 {
		t.Errorf("bad requests changed the dots: %d listed", len(list))
	}
	// Only the one good have/want call pinned an object (32 bytes).
	var pinned int64
	_ = filepath.Walk(filepath.Join(n.DataDir, "dump", "pins"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			pinned += fi.Size()
		}
		return nil
	})
	if pinned != 32 {
		t.Errorf("pins hold %d bytes after one good and many bad requests, want 32", pinned)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func zeros(n int) string {
	b, _ := json.Marshal(make([]byte, (n+7)/8))
	return strings.Trim(string(b), `"`)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
