package bucket

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// OpenFunc opens a store of one kind at a parsed URL.
type OpenFunc func(ctx context.Context, u URL, cfg Config) (Store, error)

var (
	kindsMu sync.RWMutex
	kinds   = map[string]OpenFunc{"file": openDir}
)

// Register makes a kind of store openable by URL scheme, as database/sql
// drivers are: package bucket/s3 registers "s3" when imported. It panics
// when the scheme is taken, which is a programming error.
func Register(scheme string, open OpenFunc) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, ok := kinds[scheme]; ok {
		panic("bucket: store kind " + scheme + " registered twice")
	}
	kinds[scheme] = open
}

// Open opens the store at url ("s3://BUCKET[/PREFIX]", "file:///DIR" or
// an absolute directory) through its kind's registered OpenFunc. The
// store is bare: wrap it with WithLimit, WithLogging and WithRetry.
func Open(ctx context.Context, url string, cfg Config) (Store, error) {
	u, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	kindsMu.RLock()
	open, ok := kinds[u.Scheme]
	known := make([]string, 0, len(kinds))
	for k := range kinds {
		known = append(known, k+"://")
	}
	kindsMu.RUnlock()
	if !ok {
		slices.Sort(known)
		return nil, fmt.Errorf("%w: store URL %q: no store kind %q is built in (known: %s)", dotmesh.ErrNotSupported, url, u.Scheme, strings.Join(known, ", "))
	}
	return open(ctx, u, cfg)
}

// Error is a failed store operation: Op on object Name of the store at
// Location. Err says what went wrong and wraps a dotmesh sentinel, so
// errors.Is(err, dotmesh.ErrNotFound) and the like work through it.
type Error struct {
	Op       string // "put", "create", "get", "stat", "list", "delete", "open"
	Name     string // the object; the prefix of a listing; "" for the store
	Location string // the store's Location()
	Err      error
}

func (e *Error) Error() string {
	what := e.Op
	switch {
	case e.Op == "list":
		what += fmt.Sprintf(" %q", e.Name)
	case e.Name != "":
		what += " " + e.Name
	}
	return fmt.Sprintf("%s in %s: %v", what, e.Location, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
