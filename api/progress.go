package api

import (
	"encoding/json"
	"mime"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Long calls (commit, checkout, reset, gc, verify) answer a client whose
// Accept header names NDJSON (and not plain JSON before it) with a
// stream: status 200, then lines of ProgressEvent: progress and
// keep-alive lines while the node works, and last exactly one line with
// the status and the body the plain call would have answered. A call
// refused before it starts (bad request, permission) is answered plainly,
// with no stream. Clients that ask for JSON are answered as always.

// NDJSON is the media type of streamed answers.
const NDJSON = "application/x-ndjson"

// ProgressEvent is one line of a streamed answer.
type ProgressEvent struct {
	Progress  *dotmesh.Progress `json:"progress,omitempty"`
	KeepAlive bool              `json:"keepalive,omitempty"` // every TransferKeepAlive; clients ignore them
	// Status is the last line's: the plain call's HTTP status, with
	// Result (its body) when 2xx, else Error.
	Status int             `json:"status,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// WantsNDJSON reports whether an Accept header asks for a streamed
// answer: it names NDJSON, and plain JSON not at all or after it.
func WantsNDJSON(accept string) bool { return prefers(accept, NDJSON) }

// WantsHistoryLines reports whether an Accept header asks for a history
// page as HistoryLines: it names them, and plain JSON not at all or
// after them.
func WantsHistoryLines(accept string) bool { return prefers(accept, HistoryLines) }

// prefers reports whether accept names media type want, and plain JSON
// not at all or after it.
func prefers(accept, want string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["q"] == "0" {
			continue
		}
		switch mt {
		case want:
			return true
		case "application/json":
			return false
		}
	}
	return false
}
