package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestKeepAliveSparesASlowAnswer: a transfer call whose node works for
// longer than the client's idle timeout before it answers (a Finish that
// restores a large tree) succeeds when the handler sends keep-alives, and
// is cut without them.
func TestKeepAliveSparesASlowAnswer(t *testing.T) {
	s := &server{}
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
			return
		}
		writeJSON(w, http.StatusOK, dotmesh.TransferState{Exists: true})
	}
	for _, keep := range []bool{true, false} {
		h := http.HandlerFunc(slow)
		if keep {
			h = s.keepAlive(slow)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /v1/dots/admin/app/transfer", h)
		srv := httptest.NewServer(mux)
		c, err := client.New(srv.URL, "", "k", client.WithIdleTimeout(2*api.TransferKeepAlive))
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.State(context.Background(), dotmesh.DotName{Namespace: "admin", Name: "app"}, "master", dotmesh.StateOptions{})
		srv.Close()
		switch {
		case keep && (err != nil || !st.Exists):
			t.Fatalf("with keep-alives: %+v, %v", st, err)
		case !keep && err == nil:
			t.Fatal("without keep-alives a 5 s silence passed a 2 s idle timeout: the test proves nothing")
		}
	}
}
