package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Exit statuses: one per kind of error, so that scripts can tell "not
// there" from "someone else changed it" from "try again later". The kinds
// come from the dotmesh sentinels, which survive the HTTP API as wire
// codes (api.RemoteError unwraps to them). Documented in exitHelp, README.
const (
	exitOK           = 0
	exitFailure      = 1 // anything without a kind below
	exitUsage        = 2 // unknown command or flag, wrong number of arguments
	exitInvalid      = 3 // a name or argument breaks the rules
	exitNotFound     = 4
	exitConflict     = 5 // exists already, diverged, uncommitted changes, ambiguous, in use
	exitUnauthorized = 6
	exitUnavailable  = 7 // a node, peer, store or tool cannot be reached; try again
	exitCorrupt      = 8
	exitNotSupported = 9
	exitPermission   = 10  // the key is known but its user lacks the role
	exitHookFailed   = 11  // a dot's pre-commit or quiesce hook refused the commit
	exitInterrupted  = 130 // as a shell reports SIGINT
)

// exitHelp is the table `dm --help` shows; README has the same one.
const exitHelp = `Exit status:
  0    success
  1    failure of another kind
  2    usage: unknown command or flag, wrong arguments
  3    invalid: a name or argument breaks the rules
  4    not found: no such dot, branch, commit, remote or key
  5    conflict: exists already, diverged, uncommitted changes, in use
  6    unauthorized: a node refused the API key, or a bucket the password
  7    unavailable: a node, peer or tool cannot be reached; try again
  8    corrupt: data failed an integrity check
  9    not supported by this backend or node
  10   permission denied: the key's user lacks the role the call needs
  11   hook failed: a dot's pre-commit or quiesce hook refused the commit
  130  interrupted
With --json an error is one line {"error": MESSAGE, "kind": KIND} on
stderr (KIND: usage, invalid, not_found, conflict, unauthorized,
unavailable, corrupt, not_supported, permission_denied, hook_failed,
interrupted, error), so stdout holds only results.`

// errUsage marks a command line that does not parse.
var errUsage = errors.New("usage")

// errInterrupted is what an interrupted command reports.
var errInterrupted = errors.New("interrupted")

// kinded gives err the kind of sentinel without changing its words, for
// errors the CLI makes itself.
func kinded(sentinel, err error) error { return &kindedError{sentinel, err} }

type kindedError struct{ kind, err error }

func (e *kindedError) Error() string   { return e.err.Error() }
func (e *kindedError) Unwrap() []error { return []error{e.kind, e.err} }

// errorKind returns the kind word and exit status for err.
func errorKind(err error) (string, int) {
	switch {
	case errors.Is(err, errUsage):
		return "usage", exitUsage
	case errors.Is(err, errInterrupted), errors.Is(err, context.Canceled):
		return "interrupted", exitInterrupted
	}
	// A refusal of a known key: its typed error (rebuilt by the client
	// from the node's reason) or its sentinel, whatever the wire code.
	if errors.Is(err, dotmesh.ErrPermissionDenied) {
		return "permission_denied", exitPermission
	}
	// The wire codes keep the sentinels' match order (unauthorized first).
	switch _, body := api.ErrorFor(err); body.Code {
	case "unauthorized":
		return "unauthorized", exitUnauthorized
	case "invalid_name", "invalid_argument":
		return "invalid", exitInvalid
	case "not_found":
		return "not_found", exitNotFound
	case "already_exists", "conflict", "ambiguous", "dirty", "in_use":
		return "conflict", exitConflict
	case "not_supported":
		return "not_supported", exitNotSupported
	case "permission_denied":
		return "permission_denied", exitPermission
	case "corrupt":
		return "corrupt", exitCorrupt
	case "unavailable":
		return "unavailable", exitUnavailable
	case "hook_failed":
		return "hook_failed", exitHookFailed
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "unavailable", exitUnavailable
	}
	return "error", exitFailure
}

// reportError prints err as dm's one line (or JSON object) on stderr and
// returns the exit status.
func reportError(w io.Writer, err error, jsonOut bool) int {
	kind, code := errorKind(err)
	msg := oneLine(hinted(err))
	if jsonOut {
		b, _ := json.Marshal(struct {
			Error string `json:"error"`
			Kind  string `json:"kind"`
		}{msg, kind})
		fmt.Fprintf(w, "%s\n", b)
		return code
	}
	fmt.Fprintf(w, "dm: %s\n", msg)
	return code
}

// wantsJSON tells whether the command line asked for --json, also when
// parsing failed before the flag was seen.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}

// isCobraUsage recognises cobra's unknown-command error, which has no
// type; flag errors pass SetFlagErrorFunc.
func isCobraUsage(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command ")
}
