package dump

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/backend/dump/source/rowdiff"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Row diffs (dotmesh.SourceDiffer): a database subdot of a commit is one
// whose directory holds exactly one file, named as a source's dump
// (postgresql.sql, mysql.sql, sqlite.sql, redis.rdb): so commits made
// before a source was unbound, and commits received from other nodes,
// are known too. Of a working state, it is a subdot bound to a source,
// or one whose directory holds just a dump file (a branch made from a
// commit with sources gets their dumps as files). Dumps of commits
// stream from the store; a live database is dumped into the branch's
// scratch space for the comparison and removed after it; an unbound
// subdot's dump file is read where it is.

var _ dotmesh.SourceDiffer = (*Backend)(nil)

// dumpFileKinds maps a dump's file name to its source kind.
var dumpFileKinds = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{source.PostgreSQL, source.MySQL, source.SQLite, source.Redis} {
		if d, err := source.Open(&source.Conn{Kind: k}); err == nil {
			m[d.FileName()] = k
		}
	}
	return m
}()

// commitDatabases finds the database subdots of c's manifest.
func (b *Backend) commitDatabases(c dotmesh.CommitRef) (map[string]*Entry, error) {
	m, err := b.commitManifest(c)
	if err != nil {
		return nil, err
	}
	files := map[string][]*Entry{} // subdot → the entries under it
	for i := range m.Entries {
		e := &m.Entries[i]
		if sub, _, ok := strings.Cut(e.Path, "/"); ok {
			files[sub] = append(files[sub], e)
		}
	}
	out := map[string]*Entry{}
	for sub, es := range files {
		if len(es) == 1 && es[0].Type == TypeFile && dumpFileKinds[es[0].Path[len(sub)+1:]] != "" {
			out[sub] = es[0]
		}
	}
	return out, nil
}

// DatabaseSubdots implements dotmesh.SourceDiffer.
func (b *Backend) DatabaseSubdots(ctx context.Context, br dotmesh.BranchRef, c *dotmesh.CommitRef) (map[string]string, error) {
	out := map[string]string{}
	if c != nil {
		dbs, err := b.commitDatabases(*c)
		if err != nil {
			return nil, err
		}
		for sub, e := range dbs {
			out[sub] = dumpFileKinds[e.Path[len(sub)+1:]]
		}
		return out, nil
	}
	if err := b.needTree(br); err != nil {
		return nil, err
	}
	files, err := b.treeDumpFiles(br)
	if err != nil {
		return nil, err
	}
	for sub, f := range files {
		out[sub] = dumpFileKinds[f]
	}
	srcs, _, err := b.liveSources(br)
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		out[s.Subdot] = s.Kind
	}
	return out, nil
}

// treeDumpFiles finds the subdots of br's working tree whose directory
// holds only a dump file, and names that file.
func (b *Backend) treeDumpFiles(br dotmesh.BranchRef) (map[string]string, error) {
	subs, err := os.ReadDir(b.treeDir(br))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, sub := range subs {
		if !sub.IsDir() {
			continue
		}
		es, err := os.ReadDir(filepath.Join(b.treeDir(br), sub.Name()))
		if err != nil {
			return nil, err
		}
		if len(es) == 1 && es[0].Type().IsRegular() && dumpFileKinds[es[0].Name()] != "" {
			out[sub.Name()] = es[0].Name()
		}
	}
	return out, nil
}

// unboundDump is the dump file of an unbound database subdot of br's
// working tree: its kind and path, or "" when subdot is none.
func (b *Backend) unboundDump(br dotmesh.BranchRef, subdot string) (string, string, error) {
	files, err := b.treeDumpFiles(br)
	if err != nil || files[subdot] == "" {
		return "", "", err
	}
	return dumpFileKinds[files[subdot]], filepath.Join(b.treeDir(br), subdot, files[subdot]), nil
}

// liveSource returns the source bound to subdot of br and its driver.
func (b *Backend) liveSource(br dotmesh.BranchRef, subdot string) (*sourceConfig, source.Driver, error) {
	if err := b.needTree(br); err != nil {
		return nil, nil, err
	}
	srcs, drvs, err := b.liveSources(br)
	if err != nil {
		return nil, nil, err
	}
	for i := range srcs {
		if srcs[i].Subdot == subdot {
			return &srcs[i], drvs[i], nil
		}
	}
	return nil, nil, fmt.Errorf("%w: subdot %s of %s has no database source", dotmesh.ErrNotFound, subdot, br)
}

// SourceChanged implements dotmesh.SourceDiffer like Usage does for the
// whole branch, against head's dump of the subdot.
func (b *Backend) SourceChanged(ctx context.Context, br dotmesh.BranchRef, subdot string, head dotmesh.CommitRef) (bool, error) {
	dbs, err := b.commitDatabases(head)
	if err != nil {
		return false, err
	}
	e := dbs[subdot]
	s, drv, err := b.liveSource(br, subdot)
	if errors.Is(err, dotmesh.ErrNotFound) {
		return b.unboundChanged(ctx, br, subdot, head, e, err)
	}
	if err != nil {
		return false, err
	}
	if e != nil && e.Path != subdot+"/"+drv.FileName() {
		return true, nil // another kind of database
	}
	open := func() (io.ReadCloser, error) {
		if e == nil {
			return nil, fs.ErrNotExist
		}
		return b.openCommitFile(ctx, head, e.Path)
	}
	states := b.readSourceStates(br)
	same, _, st, err := b.sourceSame(ctx, s, drv, e, states, open, b.branchDir(br))
	if err != nil {
		return false, err
	}
	if st != nil {
		if err := b.saveSourceStates(br, []sourceState{*st}); err != nil {
			b.log.WarnContext(ctx, "could not record the source's fingerprint", "branch", br.String(), "subdot", subdot, "err", err)
		}
	}
	return !same, nil
}

// unboundChanged compares the dump file of an unbound subdot with head's
// (notBound is the error to return when subdot has none).
func (b *Backend) unboundChanged(ctx context.Context, br dotmesh.BranchRef, subdot string, head dotmesh.CommitRef, e *Entry, notBound error) (bool, error) {
	_, file, err := b.unboundDump(br, subdot)
	if err != nil {
		return false, err
	}
	if file == "" {
		return false, notBound
	}
	if e == nil || e.Path != subdot+"/"+filepath.Base(file) {
		return true, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h, err := b.openCommitFile(ctx, head, e.Path)
	if err != nil {
		return false, err
	}
	defer h.Close()
	cw := &compareWriter{r: bufio.NewReaderSize(h, 1<<20)}
	if _, err := io.Copy(cw, f); cw.differ {
		return true, nil
	} else if err != nil {
		return false, err
	}
	_, err = cw.r.ReadByte()
	return err != io.EOF, nil
}

// dbSide is one side of DiffDatabase, resolved: its kind, the dump's
// content id (commits), and how to read the dump.
type dbSide struct {
	kind    string
	content string
	open    func() (io.ReadCloser, error) // nil: no database
	live    bool
}

func (b *Backend) resolveSide(ctx context.Context, subdot string, side dotmesh.DatabaseSide, cleanup *[]func()) (*dbSide, error) {
	switch {
	case side.Commit != nil && side.Live != nil:
		return nil, fmt.Errorf("%w: a side of a database comparison is a commit or a live database, not both", dotmesh.ErrInvalidArgument)
	case side.Commit != nil:
		c := *side.Commit
		dbs, err := b.commitDatabases(c)
		if err != nil {
			return nil, err
		}
		e := dbs[subdot]
		if e == nil {
			return &dbSide{}, nil
		}
		return &dbSide{kind: dumpFileKinds[e.Path[len(subdot)+1:]], content: contentID(e.Chunks),
			open: func() (io.ReadCloser, error) { return b.openCommitFile(ctx, c, e.Path) }}, nil
	case side.Live != nil:
		br := *side.Live
		s, drv, err := b.liveSource(br, subdot)
		if errors.Is(err, dotmesh.ErrNotFound) {
			kind, file, uerr := b.unboundDump(br, subdot)
			if uerr != nil || file == "" {
				return &dbSide{}, uerr
			}
			return &dbSide{kind: kind, live: true, open: func() (io.ReadCloser, error) { return os.Open(file) }}, nil
		}
		if err != nil {
			return nil, err
		}
		return &dbSide{kind: s.Kind, live: true, open: func() (io.ReadCloser, error) {
			f, done, err := b.dumpToScratch(ctx, br, s, drv)
			if err != nil {
				return nil, err
			}
			*cleanup = append(*cleanup, done)
			return f, nil
		}}, nil
	}
	return &dbSide{}, nil
}

// DiffDatabase implements dotmesh.SourceDiffer.
func (b *Backend) DiffDatabase(ctx context.Context, subdot string, from, to dotmesh.DatabaseSide, opts dotmesh.RowDiffOptions) (*dotmesh.DatabaseDiff, error) {
	var cleanup []func()
	defer func() {
		for _, f := range cleanup {
			f()
		}
	}()
	a, err := b.resolveSide(ctx, subdot, from, &cleanup)
	if err != nil {
		return nil, err
	}
	z, err := b.resolveSide(ctx, subdot, to, &cleanup)
	if err != nil {
		return nil, err
	}
	out := &dotmesh.DatabaseDiff{Subdot: subdot, Kind: z.kind}
	if out.Kind == "" {
		out.Kind = a.kind
	}
	switch {
	case a.open == nil && z.open == nil:
		return nil, fmt.Errorf("%w: subdot %s is a database on neither side", dotmesh.ErrNotFound, subdot)
	case a.kind != z.kind && a.open != nil && z.open != nil:
		// A database of another kind: no rows to pair.
		out.Changed = true
		return out, nil
	}
	if !opts.Rows {
		switch {
		case a.open == nil || z.open == nil:
			out.Changed = true
		case !a.live && !z.live:
			out.Changed = a.content != z.content
		case a.live && z.live:
			return nil, fmt.Errorf("%w: two live databases are not compared; compare a commit with one", dotmesh.ErrInvalidArgument)
		default:
			live, commit := from.Live, to.Commit
			if z.live {
				live, commit = to.Live, from.Commit
			}
			out.Changed, err = b.SourceChanged(ctx, *live, subdot, *commit)
			if err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	open := func(s *dbSide) (io.Reader, error) {
		if s.open == nil {
			return nil, nil
		}
		r, err := s.open()
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { r.Close() })
		return r, nil
	}
	ra, err := open(a)
	if err != nil {
		return nil, err
	}
	rz, err := open(z)
	if err != nil {
		return nil, err
	}
	sc := &scratch{parent: b.scratchParent(from, to)}
	cleanup = append(cleanup, sc.remove)
	d, err := rowdiff.Diff(out.Kind, ra, rz, rowdiff.Options{MaxRows: opts.MaxRows, TempDir: sc.ScratchDir()})
	if err != nil {
		return nil, fmt.Errorf("comparing database %s: %w", subdot, err)
	}
	d.Subdot = subdot
	return d, nil
}

// scratchParent is the branch directory of one of the sides: where the
// spilled rows of a comparison go (and are swept after a crash).
func (b *Backend) scratchParent(sides ...dotmesh.DatabaseSide) string {
	for _, s := range sides {
		switch {
		case s.Live != nil:
			return b.branchDir(*s.Live)
		case s.Commit != nil:
			return b.branchDir(s.Commit.BranchRef)
		}
	}
	return b.dir
}

// dumpToScratch dumps s's database into a file in br's scratch space and
// opens it; done removes it.
func (b *Backend) dumpToScratch(ctx context.Context, br dotmesh.BranchRef, s *sourceConfig, drv source.Driver) (*os.File, func(), error) {
	sd := &scratchDump{scratch: scratch{parent: b.branchDir(br)}}
	dir := sd.ScratchDir()
	if dir == "" {
		return nil, nil, fmt.Errorf("cannot make a scratch directory in %s", b.branchDir(br))
	}
	f, err := os.CreateTemp(dir, "dump-*")
	if err != nil {
		sd.remove()
		return nil, nil, err
	}
	sd.f = f
	done := func() { f.Close(); sd.remove() }
	if _, err := drv.Dump(ctx, sd); err != nil {
		done()
		return nil, nil, sourceErr(s, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		done()
		return nil, nil, err
	}
	return f, done, nil
}

// scratchDump is a dump destination in a scratch directory that can
// rewind (source.Rewinder), so the postgres normaliser streams.
type scratchDump struct {
	scratch
	f *os.File
}

func (s *scratchDump) Write(p []byte) (int, error) { return s.f.Write(p) }

func (s *scratchDump) ReadAt(p []byte, off int64) (int, error) { return s.f.ReadAt(p, off) }

func (s *scratchDump) Rewind(off int64, taken []byte) error {
	if err := s.f.Truncate(off); err != nil {
		return err
	}
	_, err := s.f.Seek(off, io.SeekStart)
	return err
}
