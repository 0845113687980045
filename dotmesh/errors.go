package dotmesh

import "errors"

// Sentinel errors. Implementations wrap them with %w and add what went wrong,
// so callers test with errors.Is and users read the wrapped message.
var (
	// ErrInvalidName: a name, ref or argument does not follow the rules.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidArgument: a request is malformed in some other way.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the dot, branch, commit or key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the dot, branch or key exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: a compare-and-swap lost, or state changed underneath.
	ErrConflict = errors.New("conflict")
	// ErrAmbiguous: a commit id prefix matches more than one commit.
	ErrAmbiguous = errors.New("ambiguous")
	// ErrDirty: the operation would discard uncommitted changes.
	ErrDirty = errors.New("uncommitted changes")
	// ErrUnauthorized: missing or wrong credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotSupported: the backend or store lacks an optional capability.
	ErrNotSupported = errors.New("not supported")
	// ErrCorrupt: stored or received data failed an integrity check.
	ErrCorrupt = errors.New("corrupt data")
	// ErrUnavailable: a backend tool, store or peer cannot be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrInUse: the dot or branch is in use (mounted, or held by another node).
	ErrInUse = errors.New("in use")
)
