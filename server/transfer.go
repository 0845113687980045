package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// Transfer handlers: this node's side of dotmesh.Transport, and
// POST /v1/transfers, which runs a whole transfer against a peer.

// transferRoutes: the side of a transfer a peer drives needs read to
// send from a dot (pull, clone, fetch) and write to receive into one
// (push); a push that creates a dot in one's own namespace has that from
// RoleOf. POST /v1/transfers needs what the local side of its op needs.
func (s *server) transferRoutes() []route {
	// Keep-alives while a call works before it answers; not on
	// receiveCommit, whose peer streams to it meanwhile.
	const dot = "/v1/dots/{ns}/{dot}/transfer"
	read, write := dotmesh.RoleRead, dotmesh.RoleWrite
	return []route{
		{method: "GET", pattern: dot, access: accessDot, need: read, name: "transfer state", h: s.keepAlive(s.transferState)},
		{method: "POST", pattern: dot + "/commits", access: accessDot, need: write, name: "push a commit", h: s.receiveCommit},
		{method: "GET", pattern: dot + "/commits/{id}", access: accessDot, need: read, name: "fetch a commit", h: s.keepAlive(s.sendCommit)},
		{method: "POST", pattern: dot + "/finish", access: accessDot, need: write, name: "push", audit: "push", answer: answerFinish, h: s.keepAlive(s.finishTransfer)},
		// Object have/want (dotmesh.ObjectTransport, api/objects.go).
		{method: "GET", pattern: dot + "/commits/{id}/objects", access: accessDot, need: read, name: "list a commit's objects", h: s.keepAlive(s.commitObjects)},
		{method: "POST", pattern: dot + "/have", access: accessDot, need: write, name: "push objects", h: s.keepAlive(s.haveObjects)},
		{method: "POST", pattern: dot + "/commits/{id}/fetch", access: accessDot, need: read, name: "fetch a commit", h: s.keepAlive(s.sendCommitWithout)},
		{method: "POST", pattern: "/v1/transfers", access: accessBody, check: checkTransfer, name: "transfer", audit: "transfer", answer: answerTransfer, h: s.runTransfer},
	}
}

func (s *server) transferState(w http.ResponseWriter, r *http.Request) {
	name, q, ok := dotQuery(w, r, "branch")
	if !ok {
		return
	}
	// SkipUsage: asked by the sending side of a transfer, whose usage
	// plays no part; BriefHistory: by the sending side of a push, which
	// reads only the ids of this side's history.
	opts := dotmesh.StateOptions{
		SkipUsage:    r.Header.Get(api.SkipUsageHeader) == "1",
		BriefHistory: r.Header.Get(api.BriefHistoryHeader) == "1",
	}
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
	name, q, ok := dotQuery(w, r, "branch", "format", "base", api.CheckFinishParam)
	if !ok {
		return
	}
	var fin *dotmesh.FinishRequest
	if v := r.Header.Get(api.FinishHeader); v != "" {
		var err error
		if fin, err = api.DecodeFinish(v); err != nil {
			writeError(w, err)
			return
		}
	}
	direct := r.Header.Get("Upgrade") == api.DirectProtocol
	check, err := queryBool(q, api.CheckFinishParam)
	if err == nil && check && (fin == nil || !direct) {
		err = fmt.Errorf("%w: %s asks to check the finish of a direct stream: give %s and Upgrade %s", dotmesh.ErrInvalidArgument, api.CheckFinishParam, api.FinishHeader, api.DirectProtocol)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	// The stream is as long as the commit: the server's read timeout gives
	// way to an idle one.
	body := &idleBody{r: r.Body, rc: http.NewResponseController(w), idle: s.transferIdle}
	c, err := api.ReadCommitHeader(body)
	if err != nil {
		writeError(w, err)
		return
	}
	if direct {
		// The bare socket's own watch bounds it (directConn.watch).
		_ = body.rc.SetReadDeadline(time.Time{})
		s.receiveDirect(w, r, name, q.Get("branch"), c, baseParam(q), q.Get("format"), fin, check)
		return
	}
	if err := s.node.TransferPeer().Receive(r.Context(), name, q.Get("branch"), c, baseParam(q), q.Get("format"), body); err != nil {
		writeError(w, err)
		return
	}
	if fin == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.finishAlong(w, r, name, q.Get("branch"), *fin)
}

// finishRoute is the finish route's audit, for a finish that came along
// with the last commit (api.FinishHeader): the same record either way.
var finishRoute = route{audit: "push", answer: answerFinish}

// finishAlong finishes a transfer whose last commit was just stored, as
// finishTransfer does, and answers with its result.
//
// The audit record goes in the transaction that moves the head where the
// engine can (dotmesh.WithAudit): the answer waits for one registry write
// and fsync less.
func (s *server) finishAlong(w http.ResponseWriter, r *http.Request, name dotmesh.DotName, branch string, req dotmesh.FinishRequest) {
	requestInfo(r).action = finishRoute.audit
	rec := auditBase(r)
	rec.Detail = auditDetail(r)
	ctx, pending := dotmesh.WithAudit(r.Context(), rec)
	res, err := s.node.TransferPeer().Finish(ctx, name, branch, req)
	if err != nil {
		w.Header().Set(api.FinishFailedHeader, "1")
		writeError(w, err)
		return
	}
	cw := &captureWriter{ResponseWriter: w}
	writeJSON(cw, http.StatusOK, res)
	if _, written := pending.Written(); !written {
		s.recordAudit(r, &finishRoute, cw)
	}
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
	s.log.WarnContext(r.Context(), "sending a commit failed midway; cutting the stream", "dot", name.String(), "commit", id, "err", err)
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
	s.log.WarnContext(r.Context(), "sending a commit failed midway; cutting the stream", "dot", name.String(), "commit", id, "err", err)
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
	if !s.permit(w, r, &req) {
		return
	}
	local, remote, err := parseTransferRequest(principal(r), req) // checked by permit
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := r.Context()
	var peer dotmesh.Transport
	if req.Remote.Bucket == nil {
		var opts []client.Option
		if req.Remote.CACert != "" {
			opts = append(opts, client.WithCACert([]byte(req.Remote.CACert)))
		}
		opts = append(opts,
			client.WithConnectTimeout(time.Duration(req.Remote.ConnectTimeoutMS)*time.Millisecond),
			client.WithIdleTimeout(time.Duration(req.Remote.IdleTimeoutMS)*time.Millisecond))
		c, err := client.New(req.Remote.URL, req.Remote.User, req.Remote.APIKey, opts...)
		if err != nil {
			writeError(w, err)
			return
		}
		peer = c
	}
	if req.RemoteDot == "" && req.Op != "clone" {
		if d, err := s.node.Dot(ctx, local); err == nil && d.Upstreams[req.Remote.Name] != "" {
			remote, _ = dotmesh.ParseDotName(d.Upstreams[req.Remote.Name])
		}
	}
	requestInfo(r).detail = "remote " + req.Remote.Name + " " + remote.Namespace + "/" + remote.Name
	emit, stopKeepAlive := ndjsonAnswer(w, api.TransferEvent{KeepAlive: true})
	var mu sync.Mutex
	var last time.Time
	o := dotmesh.TransferOptions{
		RemoteDot: remote, RemoteName: req.Remote.Name, StashOnDivergence: req.Stash, Neutral: req.Neutral,
		Progress: func(p dotmesh.Progress) {
			mu.Lock()
			now := time.Now()
			// Phases (finishing, a local restore) are few and metered
			// already; the streams' bytes are thinned out here.
			due := now.Sub(last) >= 200*time.Millisecond || p.Phase != "" || (p.Total > 0 && p.Bytes == p.Total)
			if due {
				last = now
			}
			mu.Unlock()
			if due {
				emit(api.TransferEvent{Progress: &p})
			}
		},
	}
	var res *dotmesh.TransferResult
	byPeer := false // opening the bucket failed: all its own
	closeBucket := func() {}
	if b := req.Remote.Bucket; b != nil {
		// The bucket's settings, credentials and password serve this
		// call only; they are in no log line and no audit record.
		var br *bucketremote.Remote
		br, err = bucketremote.Dial(ctx, bucketremote.Config{URL: b.URL, Password: []byte(b.Password), Logger: s.log,
			Store: bucket.Config{Endpoint: b.Endpoint, Region: b.Region, AccessKey: b.AccessKey, SecretKey: b.SecretKey, SessionToken: b.SessionToken}})
		if err == nil {
			closeBucket = func() {
				if err := br.Close(context.WithoutCancel(ctx)); err != nil {
					s.log.Warn("closing a bucket remote", "remote", req.Remote.Name, "err", err)
				}
			}
			peer = br
		}
		byPeer = err != nil
	}
	switch {
	case err != nil:
	case req.Op == "push":
		res, err = s.node.Push(ctx, local, req.Branch, peer, o)
	case req.Op == "pull":
		res, err = s.node.Pull(ctx, local, req.Branch, peer, o)
	case req.Op == "clone":
		res, err = s.node.Clone(ctx, local, req.Branch, peer, o)
	}
	stopKeepAlive()
	// The bucket's lock goes before the answer does, so that the caller's
	// next command on the bucket (a gc) does not find this push's lock.
	closeBucket()
	if err != nil {
		if rec := recorderOf(w); rec != nil {
			rec.err = err
		}
		_, body := api.ErrorFor(err)
		body.RequestID = requestID(r)
		// Errors the peer answered come back as RemoteErrors from the
		// peer client; this node's own errors never are.
		var re *api.RemoteError
		body.Peer = byPeer || errors.As(err, &re) || (req.Remote.Bucket != nil && fromBucket(err))
		emit(api.TransferEvent{Error: &body})
		return
	}
	s.log.InfoContext(r.Context(), "transfer done", "op", req.Op, "dot", local.String(), "remote", req.Remote.Name, "remote_dot", remote.String(),
		"commits", res.Commits, "bytes", res.Bytes, "took", res.Duration)
	emit(api.TransferEvent{Result: res})
}

// fromBucket tells the errors of a bucket peer (its store, its
// repository, its password) from this node's own: the call itself was
// authenticated already, so an unauthorized error is the bucket's.
func fromBucket(err error) bool {
	var (
		be *bucket.Error
		ce *repo.CorruptError
		le *repo.LockedError
	)
	return errors.As(err, &be) || errors.As(err, &ce) || errors.As(err, &le) || errors.Is(err, dotmesh.ErrUnauthorized)
}

// checkTransfer: a push reads the local dot, a pull writes it, a clone
// creates it (owner of its name: one's own namespace, or an admin). A
// file:// bucket is this node's own filesystem: only an admin may have
// the node write or read there.
func checkTransfer(s *server, r *http.Request, req any) ([]requirement, error) {
	t := req.(*api.TransferRequest)
	local, _, err := parseTransferRequest(principal(r), *t)
	if err != nil {
		return nil, err
	}
	need := map[string]dotmesh.Role{"push": dotmesh.RoleRead, "pull": dotmesh.RoleWrite, "clone": dotmesh.RoleOwner}[t.Op]
	requestInfo(r).action = t.Op
	reqs := []requirement{{dot: &local, role: need}}
	if b := t.Remote.Bucket; b != nil {
		if u, _ := bucket.ParseURL(b.URL); u.Scheme != "s3" { // checked by parseTransferRequest
			reqs = append(reqs, requirement{role: dotmesh.RoleAdmin})
		}
	}
	return reqs, nil
}

// parseTransferRequest checks a TransferRequest and returns the local and
// remote dot names. A local name without namespace is in the caller's
// namespace; a remote one in the remote user's. When the remote dot is
// not named and the remote's user is not the admin, it is that user's
// dot of the same name (`dm push hub app` as alice@hub pushes to
// alice/app); a clone's local dot, when not named apart (or named as the
// remote one by a non-admin), is the remote dot's name in the caller's
// namespace. Admin to admin, names stay as they are.
func parseTransferRequest(p dotmesh.Principal, req api.TransferRequest) (local, remote dotmesh.DotName, err error) {
	switch req.Op {
	case "push", "pull", "clone":
	default:
		return local, remote, fmt.Errorf("%w: op %q must be push, pull or clone", dotmesh.ErrInvalidArgument, req.Op)
	}
	remoteUser := req.Remote.User
	if remoteUser == "" {
		remoteUser = dotmesh.AdminUser
	}
	remoteFor := func(s string) (dotmesh.DotName, error) {
		return parseDotFor(dotmesh.Principal{User: remoteUser}, s)
	}
	if req.Op == "clone" {
		src := req.RemoteDot
		if src == "" {
			src = req.Dot
		}
		if remote, err = remoteFor(src); err != nil {
			return local, remote, err
		}
		switch {
		case req.Dot == "" || (req.Dot == req.RemoteDot && !p.Admin):
			local = dotmesh.DotName{Namespace: ownNamespace(p), Name: remote.Name}
		default:
			if local, err = parseDotFor(p, req.Dot); err != nil {
				return local, remote, err
			}
		}
	} else {
		if local, err = parseDotFor(p, req.Dot); err != nil {
			return local, remote, err
		}
		remote = local
		switch {
		case req.RemoteDot != "":
			if remote, err = remoteFor(req.RemoteDot); err != nil {
				return local, remote, err
			}
		case remoteUser != dotmesh.AdminUser:
			remote = dotmesh.DotName{Namespace: remoteUser, Name: local.Name}
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
	switch b := req.Remote.Bucket; {
	case b != nil:
		if _, err = bucket.ParseURL(b.URL); err != nil {
			return local, remote, fmt.Errorf("remote.bucket.url: %w", err)
		}
	case req.Remote.URL == "" || req.Remote.APIKey == "":
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

// idleBody is a commit stream's request body whose read deadline moves
// out as it is read: the stream may take as long as it needs, but a
// sender that stops sending with the connection open is cut after idle
// (a direct stream has its own watch, directConn.watch), so it cannot
// hold the dot's receive for ever.
type idleBody struct {
	r     io.Reader
	rc    *http.ResponseController
	idle  time.Duration
	armed time.Time // when the deadline was last moved
}

func (b *idleBody) Read(p []byte) (int, error) {
	// Moved at most 8 times per idle: each read starts with at least 7/8
	// of it ahead, however long the receiver took between reads.
	if now := time.Now(); now.Sub(b.armed) >= b.idle/8 {
		_ = b.rc.SetReadDeadline(now.Add(b.idle))
		b.armed = now
	}
	n, err := b.r.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = stalledStream(b.idle, err)
	}
	return n, err
}

// stalledStream is the error of an incoming stream cut because its
// sender sent nothing for idle.
func stalledStream(idle time.Duration, err error) error {
	return fmt.Errorf("%w: the sender sent nothing for %s, so the stream was cut: %w", dotmesh.ErrUnavailable, idle, err)
}
