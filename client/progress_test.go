package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// A long call whose context carries a progress function gets the node's
// progress and the same result as without.
func TestLongCallProgress(t *testing.T) {
	n := servertest.Start(t)
	c, err := client.New(n.URL, "", n.Key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	if _, err := c.CreateDot(ctx, app, ""); err != nil {
		t.Fatal(err)
	}
	p, err := c.Path(ctx, "app.web")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "f"), bytes.Repeat([]byte("y"), 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []dotmesh.Progress
	pctx := dotmesh.WithProgress(ctx, func(p dotmesh.Progress) { got = append(got, p) })
	cm, err := c.Commit(pctx, app, "", "one", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[len(got)-1].Phase != "syncing" {
		t.Fatalf("progress of a commit: %+v", got)
	}
	head, err := c.ResolveRef(ctx, app, "", "HEAD")
	if err != nil || !reflectEqualJSON(t, cm, head) {
		t.Fatalf("streamed commit %+v; the node has %+v (%v)", cm, head, err)
	}
	plain, err := c.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	streamed, err := c.Verify(pctx, nil)
	if err != nil || !reflectEqualJSON(t, plain, streamed) || len(got) == 0 {
		t.Fatalf("verify: streamed %+v (%v, progress %+v); plain %+v", streamed, err, got, plain)
	}
	// The node's errors arrive as they do without progress.
	_, perr := c.Reset(ctx, app, "", "nosuch", false)
	_, serr := c.Reset(pctx, app, "", "nosuch", false)
	if perr == nil || serr == nil || perr.Error() != serr.Error() || !errors.Is(serr, dotmesh.ErrNotFound) {
		t.Fatalf("reset to a missing ref: plain %v, streamed %v", perr, serr)
	}
}

func reflectEqualJSON(t *testing.T, a, b any) bool {
	t.Helper()
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// A node that does not stream answers plain JSON: the call still works.
func TestLongCallProgressFromPlainNode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"backends":{}}`))
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "", "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx := dotmesh.WithProgress(context.Background(), func(dotmesh.Progress) {})
	if res, err := c.Verify(ctx, nil); err != nil || res == nil {
		t.Fatalf("verify from a plain node: %+v, %v", res, err)
	}
}

// FuzzLongCallStream: whatever a node streams to a long call, the client
// answers what the first deciding line (a status) says: the result, or
// the node's error (a message always); a line that is not an event or a
// stream without a deciding line is ErrCorrupt. Progress lines before it
// are reported, none after.
func FuzzLongCallStream(f *testing.F) {
	f.Add([]byte(`{"progress":{"phase":"verifying","bytes":1,"total":2}}` + "\n" + `{"status":200,"result":{"backends":{}}}` + "\n"))
	f.Add([]byte(`{"keepalive":true}` + "\n" + `{"status":404,"error":{"error":"no dot","code":"not_found"}}`))
	f.Add([]byte(`{"status":500,"error":{}}`))
	f.Add([]byte(`{"status":200}`))
	f.Add([]byte(`{"status":201,"result":[1]}`))
	f.Add([]byte("{\"progress\":{}}\r\n\nnot json\n"))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, body []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", api.NDJSON)
			_, _ = w.Write(body)
		}))
		defer srv.Close()
		c, err := client.New(srv.URL, "", "k")
		if err != nil {
			t.Fatal(err)
		}
		progress := 0
		ctx := dotmesh.WithProgress(context.Background(), func(dotmesh.Progress) { progress++ })
		res, err := c.Verify(ctx, nil)
		if err == nil && res == nil {
			t.Fatal("no result and no error")
		}
		var re *api.RemoteError
		switch {
		case err == nil:
		case errors.As(err, &re):
			if re.Message == "" || re.Status < 400 {
				t.Fatalf("remote error without a message or with status %d: %v", re.Status, err)
			}
		case !errors.Is(err, dotmesh.ErrCorrupt):
			t.Fatalf("error of no kind: %v", err)
		}
		// At most one report a line. Not a count of "progress" in the
		// body: JSON keys match whatever their case or escapes
		// ("progresS", "progr\u0065ss").
		if lines := bytes.Count(body, []byte("\n")) + 1; progress > lines {
			t.Fatalf("%d progress reports from %d lines: %q", progress, lines, body)
		}
	})
}
