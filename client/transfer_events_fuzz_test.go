package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzTransferEvents: whatever NDJSON a node answers to POST /v1/transfers,
// the client reports exactly what its first deciding line says: the
// result, or the node's error with its kind (a message always), a line
// that is not JSON as ErrCorrupt, and no deciding line as ErrUnavailable;
// progress is reported for each progress line before it.
func FuzzTransferEvents(f *testing.F) {
	f.Add([]byte(`{"progress":{"bytes":1}}` + "\n" + `{"result":{"dot":"admin/app","commits":2}}` + "\n"))
	f.Add([]byte(`{"progress":{"bytes":1}}` + "\n" + `{"error":{"error":"wrong API key","code":"unauthorized","peer":true}}`))
	f.Add([]byte(`{"error":{"code":"not_found"}}`))
	f.Add([]byte(`{"error":{"error":"remote origin: uncommitted changes: ...","code":"dirty","peer":true,"reason":{"type":"dirty","namespace":"admin","dot":"app","branch":"master","where":"this node","bytes":3}}}`))
	f.Add([]byte("{\"progress\":{}}\r\n\nnot json\n"))
	f.Add([]byte(``))
	var mu sync.Mutex
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		mu.Lock()
		defer mu.Unlock()
		w.Write(body)
	}))
	f.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "admin", "key")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 512<<10 {
			return // lines over the client's 1 MiB line limit are another case
		}
		mu.Lock()
		body = data
		mu.Unlock()
		var progress int
		res, err := c.Transfer(context.Background(), api.TransferRequest{Op: "push"}, func(dotmesh.Progress) { progress++ })

		// What the stream says, line by line.
		lines := strings.Split(string(data), "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		wantProgress := 0
		for _, l := range lines {
			var ev api.TransferEvent
			if json.Unmarshal([]byte(strings.TrimSuffix(l, "\r")), &ev) != nil {
				if !errors.Is(err, dotmesh.ErrCorrupt) || res != nil {
					t.Fatalf("line %q is not JSON: got %+v, %v", l, res, err)
				}
				break
			}
			if ev.Error != nil {
				var re *api.RemoteError
				if !errors.As(err, &re) || re.Code != ev.Error.Code || re.Peer != ev.Error.Peer || err.Error() == "" {
					t.Fatalf("error line %q: got %+v, %v", l, res, err)
				}
				if s := api.Sentinel(ev.Error.Code); s != nil && !errors.Is(err, s) {
					t.Fatalf("error line %q: %v is not %v", l, err, s)
				}
				if typed := ev.Error.Reason.Err(); typed != nil && !errors.As(err, reflect.New(reflect.TypeOf(typed)).Interface()) {
					t.Fatalf("error line %q: %v is no %T", l, err, typed)
				}
				break
			}
			if ev.Result != nil {
				if err != nil || !reflect.DeepEqual(res, ev.Result) {
					t.Fatalf("result line %q: got %+v, %v", l, res, err)
				}
				break
			}
			if ev.Progress != nil {
				wantProgress++
			}
			if l == lines[len(lines)-1] && !errors.Is(err, dotmesh.ErrUnavailable) {
				t.Fatalf("no deciding line in %q: got %+v, %v", data, res, err)
			}
		}
		if len(lines) == 0 && !errors.Is(err, dotmesh.ErrUnavailable) {
			t.Fatalf("empty answer: %+v, %v", res, err)
		}
		if progress != wantProgress {
			t.Fatalf("%d progress calls for %d progress lines", progress, wantProgress)
		}
	})
}
