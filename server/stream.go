package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// answerLong runs a long call, fn, once the request was checked, and replies
// with its result (status) or error. A client that asks for NDJSON
// (api.WantsNDJSON) gets the call's progress while it runs, then the same
// status and body as one last line (api.ProgressEvent).
func (s *server) answerLong(w http.ResponseWriter, r *http.Request, status int, fn func(ctx context.Context) (any, error)) {
	if !api.WantsNDJSON(r.Header.Get("Accept")) {
		v, err := fn(r.Context())
		reply(w, status, v, err)
		return
	}
	requestInfo(r).streamed = true
	w.Header().Set("Content-Type", api.NDJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	rc := http.NewResponseController(w)
	emit := func(ev api.ProgressEvent) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
		_ = rc.Flush()
	}
	// Keep-alive lines while fn runs, so that a client's idle timeout
	// tells a busy node from a stopped one; the goroutine ends before the
	// handler does, as nothing may write to w after that.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(api.TransferKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				emit(api.ProgressEvent{KeepAlive: true})
			}
		}
	}()
	ctx := dotmesh.WithProgress(r.Context(), func(p dotmesh.Progress) { emit(api.ProgressEvent{Progress: &p}) })
	v, err := fn(ctx)
	close(stop)
	<-stopped
	if err != nil {
		code, body := api.ErrorFor(err)
		if rec := recorderOf(w); rec != nil {
			rec.err = err
			body.RequestID = rec.id
		}
		emit(api.ProgressEvent{Status: code, Error: &body})
		return
	}
	data, err := json.Marshal(v)
	if err != nil { // our own types: a bug
		code, body := api.ErrorFor(err)
		emit(api.ProgressEvent{Status: code, Error: &body})
		return
	}
	emit(api.ProgressEvent{Status: status, Result: data})
}
