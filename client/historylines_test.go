package client_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// A history page travels as api.HistoryLines between a client and a
// node that know them, and as JSON where either is older: a node that
// answers JSON whatever the client accepts (an older node: here the node
// behind a proxy that asks for JSON, which a node answers as it always
// did), and a client that asks for JSON (an older client). Each way the
// client gets the same page.
func TestHistoryLinesAndJSON(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	c := newClient(t, n)
	web := dotmesh.DotName{Name: "web"}
	must(c.CreateDot(ctx, web, ""))
	for _, req := range []api.CommitRequest{
		{Message: "one", AllowEmpty: true},
		{Message: "two\n\nwith a body \"quoted\" é", AllowEmpty: true, Metadata: map[string]string{"k": "v", "ticket": "42"}},
		{Message: "three", AllowEmpty: true},
	} {
		must(c.CommitWith(ctx, web, req))
	}
	must(c.CreateTag(ctx, web, api.TagRequest{Name: "v1", Ref: "HEAD^"}))

	// An older client's request: plain JSON asked and answered.
	u := n.URL + "/v1/dots/admin/web/history"
	get := func(accept string) *http.Response {
		req := must(http.NewRequestWithContext(ctx, http.MethodGet, u, nil))
		req.Header.Set("Accept", accept)
		req.SetBasicAuth(api.AdminUser, n.Key)
		resp := must(http.DefaultClient.Do(req))
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET history (Accept %s): %s", accept, resp.Status)
		}
		return resp
	}
	resp := get("application/json")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("a client asking for JSON got %s", ct)
	}
	var old api.HistoryPage
	if err := json.NewDecoder(resp.Body).Decode(&old); err != nil {
		t.Fatal(err)
	}
	if ct := get(api.HistoryLines + ", application/json;q=0.5").Header.Get("Content-Type"); ct != api.HistoryLines {
		t.Fatalf("a client asking for history lines got %s", ct)
	}

	// An older node: the same node behind a proxy that asks for JSON.
	target := must(url.Parse(n.URL))
	proxy := httputil.NewSingleHostReverseProxy(target)
	direct := proxy.Director
	proxy.Director = func(r *http.Request) {
		direct(r)
		r.Header.Set("Accept", "application/json")
	}
	older := httptest.NewServer(proxy)
	t.Cleanup(older.Close)
	oc := must(client.New(older.URL, "", n.Key))

	for name, cl := range map[string]*client.Client{"lines": c, "older node": oc} {
		page := must(cl.History(ctx, web, "", "", 0, 0))
		if len(page.Commits) != 3 || page.Current != old.Current || !maps.EqualFunc(page.Refs, old.Refs, slices.Equal) || page.More != old.More {
			t.Fatalf("%s: page %+v, the JSON page %+v", name, page, old)
		}
		for i := range page.Commits {
			if g, w := page.Commits[i], old.Commits[i]; !client.SameCommit(g, w) {
				t.Errorf("%s: commit %d %+v, the JSON page's %+v", name, i, g, w)
			}
		}
		var each []dotmesh.Commit
		p := must(cl.HistoryEach(ctx, web, "", "", 0, 2, func(string) bool { return false }, func(p *api.HistoryPage, cm *dotmesh.Commit) error {
			if p.Current != "master" {
				t.Errorf("%s: commit %s handed over before the page's current branch", name, cm.ID)
			}
			each = append(each, *cm)
			return nil
		}))
		if !p.More || len(each) != 2 || each[1].Message != old.Commits[1].Message || each[1].Metadata["ticket"] != "42" || each[1].Info != nil {
			t.Errorf("%s: HistoryEach of 2: more %v, %+v", name, p.More, each)
		}
	}
}
