package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

// sqlite takes a consistent copy with the online backup API (".backup"),
// then dumps the copy as SQL text (".dump": rows in rowid order, so the
// same database gives the same bytes). Restore builds a fresh database
// from the dump and copies it over the live one with ".restore", which
// goes through SQLite's locking like any writer.
type sqlite struct{ c *Conn }

func (s *sqlite) FileName() string { return "sqlite.sql" }

func (s *sqlite) shell(stdin io.Reader, stdout io.Writer, args ...string) *tool {
	return &tool{name: "sqlite3", args: append([]string{"-bail", "-batch"}, args...), stdin: stdin, stdout: stdout}
}

func (s *sqlite) Exists(ctx context.Context) (bool, error) {
	_, err := os.Stat(s.c.Database)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (s *sqlite) Create(ctx context.Context, schema string) error {
	if err := os.MkdirAll(filepath.Dir(s.c.Database), 0o755); err != nil {
		return err
	}
	if err := s.shell(strings.NewReader(schema+"\n"), nil, s.c.Database).run(ctx); err != nil {
		return fmt.Errorf("creating %s: %w", s.c.Database, err)
	}
	return nil
}

func (s *sqlite) Drop(ctx context.Context) error {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(s.c.Database + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (s *sqlite) Dump(ctx context.Context, w io.Writer) (Info, error) {
	info, err := s.versions(ctx)
	if err != nil {
		return info, err
	}
	if ok, err := s.Exists(ctx); err != nil || !ok {
		return info, s.missing(err)
	}
	dir, err := os.MkdirTemp(scratchDir(w), ".dm-sqlite-")
	if err != nil {
		return info, err
	}
	defer os.RemoveAll(dir)
	copyDB := filepath.Join(dir, "copy.db")
	info.Time = time.Now().UTC()
	if err := s.shell(nil, nil, s.c.Database, ".backup "+quoteDot(copyDB)).run(ctx); err != nil {
		return info, err
	}
	return info, s.dumpCopy(ctx, copyDB, w)
}

// versions returns sqlite3's version, which is also the server's.
func (s *sqlite) versions(ctx context.Context) (Info, error) {
	var info Info
	ver, err := s.shell(nil, nil, "-version").output(ctx)
	if err != nil {
		return info, err
	}
	info.Tool = "sqlite3 " + ver
	if f := strings.Fields(ver); len(f) > 0 {
		info.Server = "SQLite " + f[0] // the library is the server
	}
	return info, nil
}

func (s *sqlite) missing(err error) error {
	return fmt.Errorf("%w: database file %s does not exist (%v)", dotmesh.ErrUnavailable, s.c.Database, err)
}

// dumpCopy dumps the backup copy copyDB as SQL text into w.
func (s *sqlite) dumpCopy(ctx context.Context, copyDB string, w io.Writer) error {
	var tail tailBuffer
	if err := s.shell(nil, io.MultiWriter(w, &tail), copyDB, ".dump").run(ctx); err != nil {
		return err
	}
	if !bytes.HasSuffix(bytes.TrimSpace(tail.b), []byte("COMMIT;")) {
		return fmt.Errorf("%w: sqlite3 .dump of %s did not end with COMMIT: truncated", dotmesh.ErrUnavailable, s.c.Database)
	}
	return nil
}

func (s *sqlite) Restore(ctx context.Context, file string) error {
	dir, err := os.MkdirTemp("", "dm-sqlite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fresh := filepath.Join(dir, "fresh.db")
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.shell(f, nil, fresh).run(ctx); err != nil {
		return fmt.Errorf("loading the dump: %w", err)
	}
	if err := s.shell(nil, nil, s.c.Database, ".restore "+quoteDot(fresh)).run(ctx); err != nil {
		return fmt.Errorf("restoring %s: %w", s.c.Database, err)
	}
	return nil
}

// quoteDot quotes a path for a sqlite3 dot-command argument.
func quoteDot(p string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p) + `"`
}

// sqliteRacy is how long ago a database's files must have changed for
// their stat data to vouch for them: two writes within the filesystem's
// timestamp granularity can leave size and times as they were (git's
// "racily clean" rule).
const sqliteRacy = 2 * time.Second

// Fingerprint implements Fingerprinter with the identity, size and times
// of the database file and its write-ahead log: SQLite writes with
// write(2), never through a shared mapping, so a committed write changes
// one of them. It vouches for nothing ("") while either changed within
// sqliteRacy, or while a rollback journal holds anything (a write in
// progress, or a hot journal the next reader replays). The -shm file is
// left out: readers write to it.
func (s *sqlite) Fingerprint(ctx context.Context) (string, error) {
	fp := []string{"sqlite1"}
	now := time.Now()
	for _, suffix := range []string{"", "-wal", "-journal"} {
		var st unix.Stat_t
		err := unix.Stat(s.c.Database+suffix, &st)
		if err == unix.ENOENT && suffix != "" {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("fingerprint of %s: %w", s.c.Database+suffix, err)
		}
		if suffix == "-journal" {
			if st.Size > 0 {
				return "", nil
			}
			continue
		}
		mtime, ctime := time.Unix(st.Mtim.Unix()), time.Unix(st.Ctim.Unix())
		if now.Sub(mtime) < sqliteRacy || now.Sub(ctime) < sqliteRacy {
			return "", nil
		}
		fp = append(fp, fmt.Sprintf("%s:%d:%d:%d:%d:%d", suffix, st.Dev, st.Ino, st.Size, mtime.UnixNano(), ctime.UnixNano()))
	}
	return strings.Join(fp, " "), nil
}
