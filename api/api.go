// Package api is the wire contract between a dotmesh node's HTTP server
// and its clients: routes, request and response bodies, and the mapping of
// errors to status codes and back, so errors.Is works on both sides.
//
// Every route except GET /healthz needs an API key, sent as HTTP basic auth
// (user = the key's user, "admin" for the admin key; password = key) or as
// "Authorization: Bearer KEY" (a key of any user). Without a valid key the
// answer is 401 with `WWW-Authenticate: Basic realm="dotmesh"`, whatever
// the path (a node started with --anonymous-read lets calls without
// credentials read public dots). The authenticated user is the Author of
// commits. Each route needs a role on its dot or the node (package
// server's route table); a call without it is refused with 403 and an
// Error whose reason is "permission" (dotmesh.PermissionError), and
// changes nothing. A dot named without namespace is in the caller's
// namespace (the user's name).
//
//	GET    /healthz                                   "ok", no auth
//	GET    /v1/ping                                    Ping
//	GET    /v1/dots                                    []dotmesh.DotStatus (DotList with ListTableHeader)
//	POST   /v1/dots                                    CreateDotRequest -> dotmesh.Dot
//	GET    /v1/dots/{ns}/{dot}                         dotmesh.DotStatus
//	DELETE /v1/dots/{ns}/{dot}
//	GET    /v1/dots/{ns}/{dot}/branches                []dotmesh.Branch
//	POST   /v1/dots/{ns}/{dot}/branches                CreateBranchRequest -> dotmesh.Branch
//	DELETE /v1/dots/{ns}/{dot}/branches/{branch}
//	POST   /v1/dots/{ns}/{dot}/checkout                CheckoutRequest -> dotmesh.CheckoutReport
//	POST   /v1/dots/{ns}/{dot}/commits                 CommitRequest -> dotmesh.Commit
//	GET    /v1/dots/{ns}/{dot}/commits?branch=&limit=  []dotmesh.Commit, newest first
//	GET    /v1/dots/{ns}/{dot}/refs/{ref}?branch=      dotmesh.Commit
//	POST   /v1/dots/{ns}/{dot}/reset                   ResetRequest -> dotmesh.ResetReport
//	GET    /v1/dots/{ns}/{dot}/subdots?branch=         []string
//	POST   /v1/path                                    PathRequest -> PathResponse
//	...    /v1/dots/{ns}/{dot}/transfer..., /v1/transfers  push, pull, clone: see transfer.go
//	GET    /v1/incoming, POST /v1/incoming/abort       unfinished incoming transfers: see incoming.go
//	POST   /v1/gc                                      GCRequest -> dotmesh.GCResult
//	POST   /v1/verify                                  VerifyRequest -> dotmesh.VerifyResult
//	...    /v1/dots/{ns}/{dot}/sources[/{subdot}...]     see sources.go
//	...    /v1/me, /v1/users..., /v1/dots/{ns}/{dot}/sharing..., /v1/audit   see access.go
//	GET    /metrics                                    Prometheus text format, admin only
//	GET    /debug/pprof/...                            Go's profiler, admin only (dm serve --pprof)
//
// Successful creates (POST /v1/dots, /branches, /commits) answer 201,
// deletes 204 with no body, everything else 200. Request bodies are one
// JSON object (Content-Type application/json or none, at most 1 MiB,
// unknown fields refused); query parameters other than those listed are
// refused too. CreateDotRequest.Backend may also be an alias the server
// knows ("files" for "dump").
//
// Errors come back as a non-2xx status with an Error body, unknown routes
// (404) and methods (405, with Allow) and too large bodies (413) included.
// Every answer carries the request's id (RequestIDHeader), and so does an
// Error body.
package api

import (
	"errors"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// DefaultPort is where `dm serve` listens unless told otherwise.
const DefaultPort = 32607

// AdminUser is the user name of the admin API key.
const AdminUser = "admin"

// Ping answers GET /v1/ping.
type Ping struct {
	Version  string   `json:"version"`
	Backends []string `json:"backends"`
	User     string   `json:"user"`
}

// ListTableHeader, set to "1" on GET /v1/dots, asks for what a table of
// dots for people shows, as a DotList: the dots without their Head and
// Branches, and the unfinished incoming transfers the caller may read
// (GET /v1/incoming's answer), in one answer and one request. A node that
// predates it ignores it and answers the plain array, which a client
// tells by the answer's first byte.
const ListTableHeader = "Dotmesh-List-Table"

// DotList answers GET /v1/dots with ListTableHeader "1".
type DotList struct {
	Dots     []dotmesh.DotStatus        `json:"dots"`
	Incoming []dotmesh.IncomingTransfer `json:"incoming"`
}

// ListTableRows, as ListTableHeader's value, asks for a DotTable: only
// the fields a table of dots shows, a fifth of a DotList's bytes (1,001
// dots: 70 KB, not 350 KB), which were most of dm list's time to encode
// and decode. A node that knows only "1" answers the plain array.
const ListTableRows = "2"

// DotTable answers GET /v1/dots with ListTableHeader ListTableRows.
type DotTable struct {
	Rows     []DotRow                   `json:"rows"`
	Incoming []dotmesh.IncomingTransfer `json:"incoming"`
}

// DotRow is a dot as a table of dots shows it: its name, current branch,
// that branch's usage (size and dirty) and history length, its labels,
// who uses it, and why its usage could not be read.
type DotRow struct {
	Namespace string            `json:"ns"`
	Name      string            `json:"name"`
	Branch    string            `json:"branch"`
	Size      int64             `json:"size"`
	Dirty     bool              `json:"dirty,omitempty"`
	Commits   int               `json:"commits,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Mounts    []dotmesh.Mount   `json:"mounts,omitempty"`
	Error     string            `json:"error,omitempty"`
}

// CreateDotRequest creates a dot.
type CreateDotRequest struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Backend   string `json:"backend,omitempty"`
}

// CreateBranchRequest creates a branch from a ref of the current branch.
type CreateBranchRequest struct {
	Name string `json:"name"`
	From string `json:"from,omitempty"` // ref; empty = HEAD
}

// CheckoutRequest switches the current branch (Create: make it first).
type CheckoutRequest struct {
	Branch  string `json:"branch"`
	Create  bool   `json:"create,omitempty"`
	Restart bool   `json:"restart,omitempty"` // stop and start consumers of mounts around it
}

// CommitRequest makes a commit on Branch (empty = current).
type CommitRequest struct {
	Branch   string            `json:"branch,omitempty"`
	Message  string            `json:"message"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// AllowEmpty commits even when nothing changed since the head.
	AllowEmpty bool `json:"allow_empty,omitempty"`
}

// ResetRequest moves Branch (empty = current) back to Ref.
type ResetRequest struct {
	Branch  string `json:"branch,omitempty"`
	Ref     string `json:"ref"`
	Hard    bool   `json:"hard,omitempty"`
	Restart bool   `json:"restart,omitempty"` // stop and start consumers of mounts around it
}

// PathRequest asks for the host path of a subdot, named in the shared
// volume syntax "[namespace/]dot[@branch][.subdot]": without a branch the
// node's stable path, which follows checkout; with one, that branch's own
// directory.
type PathRequest struct {
	Volume string `json:"volume"`
}

// PathResponse carries the path.
type PathResponse struct {
	Path string `json:"path"`
}

// GCRequest applies retention (Keep newest commits per branch; 0 = none
// removed) to one dot (Name set) or all, then sweeps unreferenced data.
type GCRequest struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Keep      int    `json:"keep"`
	DryRun    bool   `json:"dry_run,omitempty"`
}

// VerifyRequest re-reads the stored data of one dot's backend (Name set)
// or of every backend.
type VerifyRequest struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"` // one line, for people
	Code  string `json:"code"`  // stable, for programs; see codes
	// Peer is set when the error came from the peer of a transfer, not
	// from the node that answered: a key the peer refused is the peer
	// remote's key to fix.
	Peer bool `json:"peer,omitempty"`
	// Reason is the typed error behind Error, as data (see Reason);
	// absent when there is none, and from servers older than it.
	Reason *Reason `json:"reason,omitempty"`
	// RequestID names the request in the node's log (RequestIDHeader),
	// so that an operator finds what happened.
	RequestID string `json:"request_id,omitempty"`
}

// RequestIDHeader carries a request's id: a client may send one (letters,
// digits and ._:- up to 64 characters; anything else is replaced), and
// the node answers with the id it used, which every log line of the
// request carries.
const RequestIDHeader = "X-Request-Id"

// codes maps sentinels to wire codes and HTTP statuses, in match order.
// The statuses are numbers, not net/http's names: the light dm links this
// package and must not link net/http (cmd/dm/light_test.go); api_test.go
// checks them against net/http's.
var codes = []struct {
	err    error
	code   string
	status int
}{
	{dotmesh.ErrUnauthorized, "unauthorized", 401},
	{dotmesh.ErrPermissionDenied, "permission_denied", 403},
	{dotmesh.ErrInvalidName, "invalid_name", 400},
	{dotmesh.ErrInvalidArgument, "invalid_argument", 400},
	{dotmesh.ErrNotFound, "not_found", 404},
	{dotmesh.ErrAlreadyExists, "already_exists", 409},
	{dotmesh.ErrConflict, "conflict", 409},
	{dotmesh.ErrAmbiguous, "ambiguous", 409},
	{dotmesh.ErrDirty, "dirty", 409},
	{dotmesh.ErrInUse, "in_use", 409},
	{dotmesh.ErrNotSupported, "not_supported", 501},
	{dotmesh.ErrCorrupt, "corrupt", 422},
	{dotmesh.ErrUnavailable, "unavailable", 503},
	{dotmesh.ErrHookFailed, "hook_failed", 424},
}

// ErrorFor returns the status and body for err.
func ErrorFor(err error) (int, Error) {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.status, Error{Error: err.Error(), Code: c.code, Reason: reasonFor(err)}
		}
	}
	return 500, Error{Error: err.Error(), Code: "internal", Reason: reasonFor(err)}
}

// Sentinel returns the dotmesh sentinel for a wire code, or nil.
func Sentinel(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}

// RemoteError is an error a server returned. It unwraps to the matching
// dotmesh sentinel and to the typed dotmesh error its Reason describes
// (so errors.As finds a *dotmesh.NotFoundError, say), and prints as the
// server's message alone.
type RemoteError struct {
	Status  int
	Message string
	Code    string
	Peer    bool    // the answering node's transfer peer said it (Error.Peer)
	Reason  *Reason // the typed error's data (Error.Reason), or nil
}

func (e *RemoteError) Error() string { return e.Message }

func (e *RemoteError) Unwrap() []error {
	var errs []error
	if t := e.Reason.Err(); t != nil {
		errs = append(errs, t)
	}
	if s := Sentinel(e.Code); s != nil {
		errs = append(errs, s)
	}
	return errs
}
