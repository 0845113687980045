package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Long calls (Commit, Checkout, Reset, GC, Verify and their variants)
// report the node's progress when their context carries a progress
// function (dotmesh.WithProgress): the client then asks for the streamed
// answer (api.NDJSON) and calls the function for each progress line. The
// call's result and errors are the same either way.

// long is do for a long call: streamed when ctx asks for progress.
func (c *Client) long(ctx context.Context, method, path string, in, out any) error {
	fn := dotmesh.ProgressFunc(ctx)
	if fn == nil {
		return c.do(ctx, method, path, nil, in, out)
	}
	so := &streamedOut{out: out, progress: fn, where: method + " " + path + " from " + c.base.Redacted()}
	return c.call(ctx, nil, method, path, nil, header{"Accept": {api.NDJSON + ", application/json;q=0.5"}}, in, so)
}

// streamedOut receives a streamed answer in call.
type streamedOut struct {
	out      any
	progress func(dotmesh.Progress)
	where    string // for errors: the call and the node
}

// read decodes a 2xx answer of contentType: a stream of progress lines
// and a last line with the result, or (a node that does not stream) the
// plain JSON result.
func (s *streamedOut) read(contentType string, r io.Reader) error {
	if !strings.HasPrefix(contentType, api.NDJSON) {
		if err := decodeOut(r, s.out); err != nil {
			return fmt.Errorf("%w: reading the answer of %s: %v", dotmesh.ErrCorrupt, s.where, err)
		}
		return nil
	}
	err := readProgressStream(r, s.progress, s.out)
	if err != nil && !isRemote(err) {
		return fmt.Errorf("%w: reading the answer of %s: %v", dotmesh.ErrCorrupt, s.where, err)
	}
	return err
}

func isRemote(err error) bool {
	_, ok := err.(*api.RemoteError)
	return ok
}

// decodeOut decodes a JSON value from r into out, by out's own decoder
// when it has one (answerDecoder).
func decodeOut(r io.Reader, out any) error {
	if d, ok := out.(answerDecoder); ok {
		return d.decodeAnswer(r)
	}
	return json.NewDecoder(r).Decode(out)
}

// errStreamEnded: the stream stopped before its last line.
var errStreamEnded = fmt.Errorf("the answer ended before its result (did the node restart?)")

// readProgressStream reads the lines of api.ProgressEvent in r, calling
// progress (when not nil) for each progress line, until the last line:
// its result is decoded into out (when not nil), its error returned as
// an *api.RemoteError with the error's status.
func readProgressStream(r io.Reader, progress func(dotmesh.Progress), out any) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxResponse)
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var ev api.ProgressEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("a line is not a progress event: %v", err)
		}
		switch {
		case ev.Error != nil:
			if ev.Status < 400 || ev.Status > 599 {
				return fmt.Errorf("the error line has status %d, not 4xx or 5xx", ev.Status)
			}
			msg := ev.Error.Error
			if msg == "" { // never an empty error
				msg = fmt.Sprintf("the node reported a failure without a message (code %q)", ev.Error.Code)
			}
			return &api.RemoteError{Status: ev.Status, Message: msg, Code: ev.Error.Code, Reason: ev.Error.Reason}
		case ev.Status != 0:
			if ev.Status < 200 || ev.Status > 299 {
				return fmt.Errorf("the result line has status %d, not 2xx", ev.Status)
			}
			if out == nil {
				return nil
			}
			if len(ev.Result) == 0 {
				return fmt.Errorf("the result line has no result")
			}
			return decodeOut(bytes.NewReader(ev.Result), out)
		case ev.Progress != nil && progress != nil:
			progress(*ev.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errStreamEnded
}
