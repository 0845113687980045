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
	emit, stop := ndjsonAnswer(w, api.ProgressEvent{KeepAlive: true})
	ctx := dotmesh.WithProgress(r.Context(), func(p dotmesh.Progress) { emit(api.ProgressEvent{Progress: &p}) })
	v, err := fn(ctx)
	stop()
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

// ndjsonAnswer starts a streamed answer on w: status 200, NDJSON. emit
// writes one line, from any goroutine. Until stop, a keepAlive line goes
// out every api.TransferKeepAlive, so that a client's idle timeout tells
// a busy node from a stopped one; stop returns once none is being
// written, as nothing may write to w after the handler returns.
func ndjsonAnswer(w http.ResponseWriter, keepAlive any) (emit func(any), stop func()) {
	w.Header().Set("Content-Type", api.NDJSON)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	rc := http.NewResponseController(w)
	emit = func(v any) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(v)
		_ = rc.Flush()
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(api.TransferKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				emit(keepAlive)
			}
		}
	}()
	return emit, func() { close(quit); <-done }
}
