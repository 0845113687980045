package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Transfer handlers: this node's side of dotmesh.Transport, and
// POST /v1/transfers, which runs a whole transfer against a peer.

func (s *server) registerTransfers() {
	m := s.routes
	// Keep-alives while a call works before it answers; not on
	// receiveCommit, whose peer streams to it meanwhile.
	m.HandleFunc("GET /v1/dots/{ns}/{dot}/transfer", s.keepAlive(s.transferState))
	m.HandleFunc("POST /v1/dots/{ns}/{dot}/transfer/commits", s.receiveCommit)
	m.HandleFunc("GET /v1/dots/{ns}/{dot}/transfer/commits/{id}", s.keepAlive(s.sendCommit))
	m.HandleFunc("POST /v1/dots/{ns}/{dot}/transfer/finish", s.keepAlive(s.finishTransfer))
	// Object have/want (dotmesh.ObjectTransport, api/objects.go).
	m.HandleFunc("GET /v1/dots/{ns}/{dot}/transfer/commits/{id}/objects", s.keepAlive(s.commitObjects))
	m.HandleFunc("POST /v1/dots/{ns}/{dot}/transfer/have", s.keepAlive(s.haveObjects))
	m.HandleFunc("POST /v1/dots/{ns}/{dot}/transfer/commits/{id}/fetch", s.keepAlive(s.sendCommitWithout))
	m.HandleFunc("POST /v1/transfers", s.runTransfer)
}

func (s *server) transferState(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "branch")
	if !ok {
		return
	}
	// Asked by the sending side of a transfer, whose usage plays no part.
	opts := dotmesh.StateOptions{SkipUsage: r.Header.Get(api.SkipUsageHeader) == "1"}
	st, err := s.node.TransferPeer().State(r.Context(), name, q.Get("branch"), opts)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func baseParam(q map[string][]string) *dotmesh.CommitID {
	if v := q["base"]; len(v) == 1 && v[0] != "" {
		id := dotmesh.CommitID(v[0])
		return &id
	}
	return nil
}

func (s *server) receiveCommit(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "branch", "format", "base")
	if !ok {
		return
	}
	// The stream is as long as the commit: lift the server's read timeout
	// for this body (the peer's connection dropping still ends it).
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	c, err := api.ReadCommitHeader(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.node.TransferPeer().Receive(r.Context(), name, q.Get("branch"), c, baseParam(q), q.Get("format"), r.Body); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) sendCommit(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "format", "base")
	if !ok {
		return
	}
	id := dotmesh.CommitID(r.PathValue("id"))
	// Headers go out with the first byte of data, so that an error before
	// the stream starts is still a proper error answer.
	fw := &firstWrite{w: w}
	err := s.node.TransferPeer().Send(r.Context(), name, id, baseParam(q), q.Get("format"), fw)
	if err == nil {
		return
	}
	if !fw.started {
		writeError(w, err)
		return
	}
	// Cut the connection rather than end the body cleanly: the receiver
	// must see a truncated stream.
	s.log.Warn("sending a commit failed midway; cutting the stream", "dot", name.String(), "commit", id, "err", err)
	panic(http.ErrAbortHandler)
}

// commitObjects answers one page of a commit's object list.
func (s *server) commitObjects(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "format", "base", "offset")
	if !ok {
		return
	}
	offset := 0
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > dotmesh.MaxObjectList {
			writeError(w, fmt.Errorf("%w: offset %.40q must be a number from 0 to %d", dotmesh.ErrInvalidArgument, v, dotmesh.MaxObjectList))
			return
		}
		offset = n
	}
	list, err := s.node.TransferPeer().Objects(r.Context(), name, dotmesh.CommitID(r.PathValue("id")), baseParam(q), q.Get("format"))
	if err != nil {
		writeError(w, err)
		return
	}
	if offset > len(list.IDs) {
		writeError(w, fmt.Errorf("%w: offset %d is past the %d objects", dotmesh.ErrInvalidArgument, offset, len(list.IDs)))
		return
	}
	end := min(offset+dotmesh.MaxObjectBatch, len(list.IDs))
	writeJSON(w, http.StatusOK, api.ObjectsPage{Total: len(list.IDs), Offset: offset, Digest: list.Digest, IDs: nonNil(list.IDs[offset:end])})
}

// haveObjects tells a sender which of its objects this node holds.
func (s *server) haveObjects(w http.ResponseWriter, r *http.Request) {
	name, q, req, ok := dotQueryRequest[api.HaveRequest](w, r, "branch")
	if !ok {
		return
	}
	have, err := s.node.TransferPeer().HaveObjects(r.Context(), name, q.Get("branch"), req.Commit, req.Format, req.IDs)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.HaveResponse{Have: haveBitmap(have)})
}

func haveBitmap(have []bool) []byte {
	bm := make([]byte, (len(have)+7)/8)
	for i, h := range have {
		if h {
			bm[i/8] |= 1 << (i % 8)
		}
	}
	return bm
}

// sendCommitWithout is sendCommit leaving out the objects the receiver
// holds.
func (s *server) sendCommitWithout(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok {
		return
	}
	if !noQuery(w, r) {
		return
	}
	var req api.FetchRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Filter == nil {
		writeError(w, fmt.Errorf("%w: filter is required (use GET for the whole stream)", dotmesh.ErrInvalidArgument))
		return
	}
	if err := req.Filter.Validate(); err != nil {
		writeError(w, err)
		return
	}
	id := dotmesh.CommitID(r.PathValue("id"))
	fw := &firstWrite{w: w}
	err := s.node.TransferPeer().SendWithout(r.Context(), name, id, req.Base, req.Format, req.Filter, fw)
	if err == nil {
		return
	}
	if !fw.started {
		writeError(w, err)
		return
	}
	s.log.Warn("sending a commit failed midway; cutting the stream", "dot", name.String(), "commit", id, "err", err)
	panic(http.ErrAbortHandler)
}

type firstWrite struct {
	w       http.ResponseWriter
	started bool
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.started {
		f.started = true
		f.w.Header().Set("Content-Type", "application/octet-stream")
		f.w.WriteHeader(http.StatusOK)
	}
	return f.w.Write(p)
}

func (s *server) finishTransfer(w http.ResponseWriter, r *http.Request) {
	name, q, req, ok := dotQueryRequest[dotmesh.FinishRequest](w, r, "branch")
	if !ok {
		return
	}
	res, err := s.node.TransferPeer().Finish(r.Context(), name, q.Get("branch"), *req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// runTransfer runs a push, pull or clone against the peer named in the
// request and streams progress as NDJSON. The peer's key is used for this
// call only; it is never logged (the request log has no bodies).
func (s *server) runTransfer(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	var req api.TransferRequest
	if err := readJSON(r, &req); err != nil {
		writeError(w, err)
		return
	}
	local, remote, err := parseTransferRequest(req)
	if err != nil {
		writeError(w, err)
		return
	}
	var opts []client.Option
	if req.Remote.CACert != "" {
		opts = append(opts, client.WithCACert([]byte(req.Remote.CACert)))
	}
	opts = append(opts,
		client.WithConnectTimeout(time.Duration(req.Remote.ConnectTimeoutMS)*time.Millisecond),
		client.WithIdleTimeout(time.Duration(req.Remote.IdleTimeoutMS)*time.Millisecond))
	peer, err := client.New(req.Remote.URL, req.Remote.User, req.Remote.APIKey, opts...)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	if req.RemoteDot == "" && req.Op != "clone" {
		if d, err := s.node.Dot(ctx, local); err == nil && d.Upstreams[req.Remote.Name] != "" {
			remote, _ = dotmesh.ParseDotName(d.Upstreams[req.Remote.Name])
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	rc := http.NewResponseController(w)
	emit := func(ev api.TransferEvent) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
		_ = rc.Flush()
	}
	var last time.Time
	o := dotmesh.TransferOptions{
		RemoteDot: remote, RemoteName: req.Remote.Name, StashOnDivergence: req.Stash, Neutral: req.Neutral,
		Progress: func(p dotmesh.Progress) {
			mu.Lock()
			now := time.Now()
			due := now.Sub(last) >= 200*time.Millisecond
			if due {
				last = now
			}
			mu.Unlock()
			if due {
				emit(api.TransferEvent{Progress: &p})
			}
		},
	}
	// Keep-alive lines while the transfer runs; the goroutine ends before
	// the handler does, as nothing may write to w after that.
	stopKeepAlive := make(chan struct{})
	keptAlive := make(chan struct{})
	go func() {
		defer close(keptAlive)
		t := time.NewTicker(api.TransferKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-stopKeepAlive:
				return
			case <-t.C:
				emit(api.TransferEvent{KeepAlive: true})
			}
		}
	}()
	var res *dotmesh.TransferResult
	switch req.Op {
	case "push":
		res, err = s.node.Push(ctx, local, req.Branch, peer, o)
	case "pull":
		res, err = s.node.Pull(ctx, local, req.Branch, peer, o)
	case "clone":
		res, err = s.node.Clone(ctx, local, req.Branch, peer, o)
	}
	close(stopKeepAlive)
	<-keptAlive
	if err != nil {
		if rec, ok := w.(*recorder); ok {
			rec.err = err
		}
		_, body := api.ErrorFor(err)
		// Errors the peer answered come back as RemoteErrors from the
		// peer client; this node's own errors never are.
		var re *api.RemoteError
		body.Peer = errors.As(err, &re)
		emit(api.TransferEvent{Error: &body})
		return
	}
	s.log.Info("transfer done", "op", req.Op, "dot", local.String(), "remote", req.Remote.Name, "remote_dot", remote.String(),
		"commits", res.Commits, "bytes", res.Bytes, "took", res.Duration)
	emit(api.TransferEvent{Result: res})
}

// parseTransferRequest checks a TransferRequest and returns the local and
// remote dot names.
func parseTransferRequest(req api.TransferRequest) (local, remote dotmesh.DotName, err error) {
	switch req.Op {
	case "push", "pull", "clone":
	default:
		return local, remote, fmt.Errorf("%w: op %q must be push, pull or clone", dotmesh.ErrInvalidArgument, req.Op)
	}
	if local, err = dotmesh.ParseDotName(req.Dot); err != nil {
		return local, remote, err
	}
	remote = local
	if req.RemoteDot != "" {
		if remote, err = dotmesh.ParseDotName(req.RemoteDot); err != nil {
			return local, remote, err
		}
	}
	if req.Branch != "" {
		if err = dotmesh.ValidateName("branch", req.Branch); err != nil {
			return local, remote, err
		}
	}
	if req.Remote.Name != "" {
		if err = dotmesh.ValidateName("remote", req.Remote.Name); err != nil {
			return local, remote, err
		}
	}
	if req.Remote.URL == "" || req.Remote.APIKey == "" {
		return local, remote, fmt.Errorf("%w: remote.url and remote.api_key are required", dotmesh.ErrInvalidArgument)
	}
	for _, t := range []struct {
		name string
		ms   int64
	}{{"connect_timeout_ms", req.Remote.ConnectTimeoutMS}, {"idle_timeout_ms", req.Remote.IdleTimeoutMS}} {
		if t.ms < 0 || t.ms > api.MaxTimeoutMS {
			return local, remote, fmt.Errorf("%w: remote.%s %d must be from 0 (the default) to %d", dotmesh.ErrInvalidArgument, t.name, t.ms, api.MaxTimeoutMS)
		}
	}
	return local, remote, nil
}
