package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The Client is a dotmesh.Transport to the node it talks to: a Node can
// Push to, Pull from and Clone from it directly.
var _ dotmesh.Transport = (*Client)(nil)

// State implements dotmesh.Transport; opts.SkipUsage and
// opts.BriefHistory go as headers, which nodes that predate them ignore.
func (c *Client) State(ctx context.Context, dot dotmesh.DotName, branch string, opts dotmesh.StateOptions) (*dotmesh.TransferState, error) {
	p, err := c.dotPath(dot, "transfer")
	if err != nil {
		return nil, err
	}
	hdr := header{}
	if opts.SkipUsage {
		hdr[api.SkipUsageHeader] = []string{"1"}
	}
	if opts.BriefHistory {
		hdr[api.BriefHistoryHeader] = []string{"1"}
	}
	var st dotmesh.TransferState
	if err := c.doTransfer(ctx, methodGet, p, url.Values{"branch": {branch}}, hdr, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// SendCommit implements dotmesh.Transport: the commit header frame and
// the data stream go in one streamed request body.
//
// data is read on the caller's goroutine, and SendCommit returns only
// once the request is over: nothing reads data (nor calls what its Read
// calls, such as a progress callback) after SendCommit returned.
func (c *Client) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, cm dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	p, err := c.dotPath(dot, "transfer", "commits")
	if err != nil {
		return err
	}
	q := url.Values{"branch": {branch}, "format": {format}}
	if base != nil {
		q.Set("base", string(*base))
	}
	var hdr bytes.Buffer
	if err := api.WriteCommitHeader(&hdr, cm); err != nil {
		return err
	}
	// The transfer's Finish rides along when it fits a header.
	var reqHdr header
	along := dotmesh.FinishAlongOf(ctx)
	if along != nil {
		if v, ok := api.EncodeFinish(along.Req); ok {
			reqHdr = header{api.FinishHeader: {v}}
		} else {
			along = nil
		}
	}
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		body, respHdr, err := c.streamWith(ctx, methodPost, p, q, reqHdr, pr, "application/octet-stream")
		if err == nil {
			if along != nil {
				err = finishAnswer(along, body)
			}
			body.Close()
		} else if along != nil && respHdr.Get(api.FinishFailedHeader) == "1" {
			// The commit is stored; the finish was refused, as a
			// separate Finish would have been.
			along.Answered, along.Err, err = true, err, nil
		}
		// The request is over: the copy below stops at its next Write.
		pr.CloseWithError(errRequestOver)
		sent <- err
	}()
	_, cerr := io.Copy(pw, io.MultiReader(&hdr, data))
	pw.CloseWithError(cerr) // nil: the body ends
	if cerr == nil && along != nil && along.Sent != nil {
		along.Sent()
	}
	err = <-sent
	if cerr != nil && !errors.Is(cerr, errRequestOver) {
		// The stream failed on this side; the request failed from it.
		if along != nil {
			along.Answered, along.Res, along.Err = false, nil, nil
		}
		return fmt.Errorf("reading the stream of commit %s: %w", cm.ID, cerr)
	}
	return err
}

// finishAnswer reads the answer of a commit sent with FinishHeader into
// along: a FinishResult (200), or nothing (204) from a node that predates
// it, which leaves along unanswered.
func finishAnswer(along *dotmesh.FinishAlong, body io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(body, maxResponse))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var res dotmesh.FinishResult
	if err := json.Unmarshal(data, &res); err != nil || res.Head == "" {
		return fmt.Errorf("%w: the answer to a commit sent with its finish is not a finish result: %.80q", dotmesh.ErrCorrupt, data)
	}
	along.Answered, along.Res = true, &res
	return nil
}

// errRequestOver ends a request body's copy when the request ended first.
var errRequestOver = errors.New("the request ended before its body")

// FetchCommit implements dotmesh.Transport.
func (c *Client) FetchCommit(ctx context.Context, dot dotmesh.DotName, id dotmesh.CommitID, base *dotmesh.CommitID, format string) (io.ReadCloser, error) {
	p, err := c.dotPath(dot, "transfer", "commits", string(id))
	if err != nil {
		return nil, err
	}
	q := url.Values{"format": {format}}
	if base != nil {
		q.Set("base", string(*base))
	}
	return c.stream(ctx, methodGet, p, q, nil, "")
}

// Finish implements dotmesh.Transport.
func (c *Client) Finish(ctx context.Context, dot dotmesh.DotName, branch string, req dotmesh.FinishRequest) (*dotmesh.FinishResult, error) {
	p, err := c.dotPath(dot, "transfer", "finish")
	if err != nil {
		return nil, err
	}
	var res dotmesh.FinishResult
	if err := c.doTransfer(ctx, methodPost, p, url.Values{"branch": {branch}}, nil, req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Transfer asks the node to run a push, pull or clone against the peer in
// req, calling progress (when not nil) for each progress event.
func (c *Client) Transfer(ctx context.Context, req api.TransferRequest, progress func(dotmesh.Progress)) (*dotmesh.TransferResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	// The node sends a keep-alive event every second while it works, so
	// the idle timeout finds a node that stopped, not one that is busy.
	rc, err := c.stream(ctx, methodPost, "/v1/transfers", nil, bytes.NewReader(body), "application/json")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sc := bufio.NewScanner(io.LimitReader(rc, maxResponse))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev api.TransferEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("%w: reading the transfer's progress from %s: %v", dotmesh.ErrCorrupt, c.base.Redacted(), err)
		}
		switch {
		case ev.Error != nil:
			msg := ev.Error.Error
			if msg == "" { // never print an empty error
				msg = fmt.Sprintf("the node at %s reported a failed transfer without a message (code %q)", c.base.Redacted(), ev.Error.Code)
			}
			return nil, &api.RemoteError{Status: statusOK, Message: msg, Code: ev.Error.Code, Peer: ev.Error.Peer, Reason: ev.Error.Reason}
		case ev.Result != nil:
			return ev.Result, nil
		case ev.Progress != nil && progress != nil:
			progress(*ev.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, c.transportError(err)
	}
	return nil, fmt.Errorf("%w: the node at %s stopped answering before the transfer finished (did it restart?); run the command again to resume", dotmesh.ErrUnavailable, c.base.Redacted())
}

// stream sends one request of the transfer protocol with a streamed body
// and returns the answer's body when its status is 2xx; the caller closes
// it. The idle timeout applies while the request is sent, while its answer
// is awaited and during each Read of the answer.
func (c *Client) stream(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (io.ReadCloser, error) {
	rc, _, err := c.streamWith(ctx, method, path, query, nil, body, contentType)
	return rc, err
}

// streamWith is stream with hdr's headers on the request; it returns the
// answer's headers also when the status is not 2xx (nil when there was
// no answer).
func (c *Client) streamWith(ctx context.Context, method, path string, query url.Values, hdr header, body io.Reader, contentType string) (io.ReadCloser, header, error) {
	ctx, w := c.watchIdle(ctx)
	h := header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		h[k] = v
	}
	req := c.request(ctx, w, method, path, query, h, nil)
	if body != nil {
		req.body, req.length = &localBody{r: body, w: w}, -1
	}
	resp, err := c.tr.roundTrip(req)
	if err != nil {
		w.stop()
		return nil, nil, c.transportError(w.error(err))
	}
	if resp.status < 200 || resp.status > 299 {
		defer w.stop()
		defer resp.body.Close()
		return nil, resp.header, w.error(remoteError(resp, progressReader{io.LimitReader(resp.body, maxResponse), w}))
	}
	w.setWaiting(false)
	return &peerBody{rc: resp.body, w: w}, resp.header, nil
}
