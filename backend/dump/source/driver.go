package source

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Info describes one dump, recorded with the commit.
type Info struct {
	Tool   string    // the dump tool's version line
	Server string    // the server's version
	Time   time.Time // when the dump's snapshot was taken (at its start)
}

// Driver dumps and restores one live database. Every method runs the
// kind's own tools and fails, naming the tool and its message, unless
// they exit successfully with complete output.
type Driver interface {
	// FileName is the dump's name in the subdot's directory.
	FileName() string
	// Dump writes a consistent, deterministic dump to w.
	Dump(ctx context.Context, w io.Writer) (Info, error)
	// Restore replaces the database's contents with the dump in file.
	Restore(ctx context.Context, file string) error
	// Exists reports whether the database exists.
	Exists(ctx context.Context) (bool, error)
	// Create makes the (missing) database and loads schema into it.
	Create(ctx context.Context, schema string) error
	// Drop removes the database and its data.
	Drop(ctx context.Context) error
}

// Scratch is a dump destination with a directory for the driver's
// temporary files (a copy of the database, a fetched RDB): on the
// destination's filesystem, private to the dump, and swept when a crash
// leaves something there. Without one, drivers use the system's
// temporary directory.
type Scratch interface {
	ScratchDir() string
}

// scratchDir is w's ScratchDir, or "".
func scratchDir(w io.Writer) string {
	if s, ok := w.(Scratch); ok {
		return s.ScratchDir()
	}
	return ""
}

// Open returns the driver for c; files sources have none. Its
// connections, where it keeps any, are its own (kept spareKeep).
func Open(c *Conn) (Driver, error) {
	return OpenWith(c, nil)
}

// OpenWith is Open with the warm connections of conns (nil: the
// driver's own), shared by the drivers a node opens for the same source
// over its life.
func OpenWith(c *Conn, conns *Conns) (Driver, error) {
	switch c.Kind {
	case PostgreSQL:
		if conns == nil {
			conns = NewConns(spareKeep)
		}
		return &postgres{c: c, conns: conns}, nil
	case SQLite:
		return &sqlite{c: c}, nil
	case Redis:
		return &redis{c: c}, nil
	case MySQL:
		return &mysql{c: c}, nil
	}
	return nil, fmt.Errorf("%w: %s sources have nothing to dump", dotmesh.ErrNotSupported, c.Kind)
}

// Fingerprinter is a Driver that can tell cheaply, without a dump, that
// its database has not changed. Fingerprint returns a string that is the
// same at two moments only if the database's dump would be the same
// (changes without one are allowed: they cost a dump), or "" when the
// database cannot vouch for that now. Taken before a dump starts, it
// describes that dump.
type Fingerprinter interface {
	Fingerprint(ctx context.Context) (string, error)
}

// Warmer is a Driver that can prepare, ahead of a commit, what the
// commit's fingerprint and snapshot would otherwise set up first (a
// connection with its catalogs loaded), keeping it in the Conns it was
// opened with.
type Warmer interface {
	Warm(ctx context.Context) error
}
