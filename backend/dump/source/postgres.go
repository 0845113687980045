package source

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// postgres dumps with pg_dump in plain SQL (one transaction: a consistent
// snapshot), restores by dropping and recreating the database and running
// the dump with psql in one transaction, stopping at the first error.
type postgres struct{ c *Conn }

func (p *postgres) FileName() string { return "postgresql.sql" }

// conninfo is the URL libpq gets: the given one without the password
// (that goes in PGPASSWORD, never on a command line), for database db.
func (p *postgres) conninfo(db string) string {
	u, _ := url.Parse(p.c.raw) // parsed once already by Parse
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String()
}

func (p *postgres) tool(name string, db string, args ...string) *tool {
	t := &tool{name: name, args: append(args, "--dbname="+p.conninfo(db)), secret: p.c.Password}
	if name == "psql" {
		t.args = append([]string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"}, t.args...)
	}
	t.env = []string{"PGCONNECT_TIMEOUT=10"}
	if p.c.Password != "" {
		t.env = append(t.env, "PGPASSWORD="+p.c.Password)
	}
	return t
}

// sql runs a script (with psql variables: :'db' quoted as a literal,
// :"db" as an identifier) in the maintenance database.
func (p *postgres) sql(ctx context.Context, db, script string) (string, error) {
	t := p.tool("psql", db, "-v", "db="+p.c.Database)
	t.stdin = strings.NewReader(script)
	return t.output(ctx)
}

const pgMaintenance = "postgres"

func (p *postgres) Exists(ctx context.Context) (bool, error) {
	out, err := p.sql(ctx, pgMaintenance, "SELECT count(*) FROM pg_database WHERE datname = :'db';\n")
	if err != nil {
		return false, fmt.Errorf("checking database %s: %w", p.c.Database, err)
	}
	return out == "1", nil
}

func (p *postgres) Create(ctx context.Context, schema string) error {
	if _, err := p.sql(ctx, pgMaintenance, "CREATE DATABASE :\"db\";\n"); err != nil {
		return fmt.Errorf("creating database %s: %w", p.c.Database, err)
	}
	if strings.TrimSpace(schema) == "" {
		return nil
	}
	t := p.tool("psql", p.c.Database, "--single-transaction")
	t.stdin = strings.NewReader(schema)
	if err := t.run(ctx); err != nil {
		return fmt.Errorf("loading the initial schema into %s: %w", p.c.Database, err)
	}
	return nil
}

func (p *postgres) Drop(ctx context.Context) error {
	if _, err := p.sql(ctx, pgMaintenance, "DROP DATABASE IF EXISTS :\"db\" WITH (FORCE);\n"); err != nil {
		return fmt.Errorf("dropping database %s: %w", p.c.Database, err)
	}
	return nil
}

func (p *postgres) Restore(ctx context.Context, file string) error {
	if err := p.Drop(ctx); err != nil {
		return err
	}
	if _, err := p.sql(ctx, pgMaintenance, "CREATE DATABASE :\"db\";\n"); err != nil {
		return fmt.Errorf("recreating database %s: %w", p.c.Database, err)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	t := p.tool("psql", p.c.Database, "--single-transaction")
	t.stdin = f
	if err := t.run(ctx); err != nil {
		return fmt.Errorf("restoring database %s: %w", p.c.Database, err)
	}
	return nil
}

// pgTrailer ends every complete plain dump: its absence means truncation.
const pgTrailer = "-- PostgreSQL database dump complete"

func (p *postgres) Dump(ctx context.Context, w io.Writer) (Info, error) {
	info := Info{Time: time.Now().UTC()} // pg_dump's snapshot is taken as it starts
	norm := newPGNormalizer(w)
	t := p.tool("pg_dump", p.c.Database, "--format=plain", "--no-password")
	t.stdout = norm
	if err := t.run(ctx); err != nil {
		return info, err
	}
	if err := norm.Close(); err != nil {
		return info, err
	}
	if !norm.complete {
		return info, fmt.Errorf("%w: pg_dump of %s ended without %q: truncated", dotmesh.ErrUnavailable, p.c.Database, pgTrailer)
	}
	info.Tool, info.Server = norm.tool, norm.server
	return info, nil
}

// pgNormalizer makes pg_dump's plain output deterministic: the rows of
// each COPY block are sorted (pg_dump emits them in physical order, which
// updates and VACUUM shuffle), and the per-run \restrict key lines are
// dropped. COPY text format keeps one row per line, so sorting lines is
// safe, and the order of rows does not matter to COPY. It also picks the
// versions out of the header, sparing extra connections.
type pgNormalizer struct {
	w        *bufio.Writer
	partial  []byte
	inCopy   bool
	block    []byte   // the COPY block's rows, back to back
	rows     [][2]int // their offsets in block
	complete bool
	server   string
	tool     string
	err      error
}

func newPGNormalizer(w io.Writer) *pgNormalizer {
	return &pgNormalizer{w: bufio.NewWriterSize(w, 1<<20)}
}

func (n *pgNormalizer) Write(p []byte) (int, error) {
	if n.err != nil {
		return 0, n.err
	}
	size := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			n.partial = append(n.partial, p...)
			break
		}
		line := p[:i+1]
		if len(n.partial) > 0 {
			line = append(n.partial, line...)
			n.partial = n.partial[:0]
		}
		n.line(line)
		p = p[i+1:]
	}
	return size, n.err
}

var (
	pgServerPrefix = []byte("-- Dumped from database version ")
	pgToolPrefix   = []byte("-- Dumped by pg_dump version ")
)

func (n *pgNormalizer) line(l []byte) {
	switch {
	case n.inCopy && string(l) == "\\.\n":
		n.flushBlock()
		n.write(l)
	case n.inCopy:
		n.rows = append(n.rows, [2]int{len(n.block), len(n.block) + len(l)})
		n.block = append(n.block, l...)
	case bytes.HasPrefix(l, []byte("\\restrict ")) || bytes.HasPrefix(l, []byte("\\unrestrict ")):
	default:
		switch {
		case bytes.HasPrefix(l, []byte("COPY ")) && bytes.HasSuffix(l, []byte("FROM stdin;\n")):
			n.inCopy = true
		case bytes.HasPrefix(l, []byte(pgTrailer)):
			n.complete = true
		case bytes.HasPrefix(l, pgServerPrefix):
			n.server = "PostgreSQL " + string(bytes.TrimSpace(l[len(pgServerPrefix):]))
		case bytes.HasPrefix(l, pgToolPrefix):
			n.tool = "pg_dump (PostgreSQL) " + string(bytes.TrimSpace(l[len(pgToolPrefix):]))
		}
		n.write(l)
	}
}

// flushBlock writes the block's rows in order; rows already in order (the
// common case) are written as they came.
func (n *pgNormalizer) flushBlock() {
	row := func(r [2]int) []byte { return n.block[r[0]:r[1]] }
	cmp := func(a, b [2]int) int { return compareRows(row(a), row(b)) }
	if slices.IsSortedFunc(n.rows, cmp) {
		n.write(n.block)
	} else {
		slices.SortFunc(n.rows, cmp)
		for _, r := range n.rows {
			n.write(row(r))
		}
	}
	n.block, n.rows, n.inCopy = n.block[:0], n.rows[:0], false
}

func (n *pgNormalizer) write(b []byte) {
	if n.err == nil {
		_, n.err = n.w.Write(b)
	}
}

// Close flushes; a dump cut inside a COPY block or mid-line is truncated.
func (n *pgNormalizer) Close() error {
	if n.err != nil {
		return n.err
	}
	if n.inCopy || len(n.partial) > 0 {
		n.complete = false
		return fmt.Errorf("%w: pg_dump output ends in the middle of table data: truncated", dotmesh.ErrUnavailable)
	}
	return n.w.Flush()
}

// compareRows orders rows by the length of their leading digit run, then
// bytewise: a total order (so deterministic) under which integer keys
// dumped in key order, the common case, are sorted already, which the
// sort detects in linear time.
func compareRows(a, b []byte) int {
	if da, db := digitRun(a), digitRun(b); da != db {
		return da - db
	}
	return bytes.Compare(a, b)
}

func digitRun(b []byte) int {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
