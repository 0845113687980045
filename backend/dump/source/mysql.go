package source

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// mysql (MariaDB and MySQL) dumps with mysqldump --single-transaction (a
// consistent InnoDB snapshot), one INSERT per row in primary key order and
// no dump date, so that the same data gives the same bytes and a changed
// row changes only its own line. Restore drops the database and runs the
// dump (which recreates it) with the mysql client, stopping at the first
// error.
type mysql struct{ c *Conn }

func (m *mysql) FileName() string { return "mysql.sql" }

func (m *mysql) tool(name string, args ...string) *tool {
	var conn []string
	if m.c.Socket != "" {
		conn = []string{"--protocol=SOCKET", "--socket=" + m.c.Socket}
	} else {
		conn = []string{"--protocol=TCP", "--host=" + m.c.Host}
		if m.c.Port != "" {
			conn = append(conn, "--port="+m.c.Port)
		}
	}
	if m.c.User != "" {
		conn = append(conn, "--user="+m.c.User)
	}
	t := &tool{name: name, args: append(conn, args...), secret: m.c.Password}
	if m.c.Password != "" {
		t.env = []string{"MYSQL_PWD=" + m.c.Password} // not on the command line
	}
	return t
}

func (m *mysql) sql(ctx context.Context, script string) (string, error) {
	t := m.tool("mysql", "--batch", "--skip-column-names")
	t.stdin = strings.NewReader(script)
	return t.output(ctx)
}

func (m *mysql) literal() string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(m.c.Database) + "'"
}

func (m *mysql) ident() string { return "`" + m.c.Database + "`" } // Parse refuses backticks

func (m *mysql) Exists(ctx context.Context) (bool, error) {
	out, err := m.sql(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = "+m.literal()+";\n")
	if err != nil {
		return false, fmt.Errorf("checking database %s: %w", m.c.Database, err)
	}
	return out == "1", nil
}

func (m *mysql) Create(ctx context.Context, schema string) error {
	if _, err := m.sql(ctx, "CREATE DATABASE "+m.ident()+";\nUSE "+m.ident()+";\n"+schema+"\n"); err != nil {
		return fmt.Errorf("creating database %s: %w", m.c.Database, err)
	}
	return nil
}

func (m *mysql) Drop(ctx context.Context) error {
	if _, err := m.sql(ctx, "DROP DATABASE IF EXISTS "+m.ident()+";\n"); err != nil {
		return fmt.Errorf("dropping database %s: %w", m.c.Database, err)
	}
	return nil
}

// mysqlTrailer ends every complete dump.
const mysqlTrailer = "-- Dump completed"

func (m *mysql) Dump(ctx context.Context, w io.Writer) (Info, error) {
	info, err := m.versions(ctx)
	if err != nil {
		return info, err
	}
	info.Time = time.Now().UTC()
	var tail tailBuffer
	t := m.dumpTool()
	t.stdout = io.MultiWriter(w, &tail)
	if err := t.run(ctx); err != nil {
		return info, err
	}
	return info, m.complete(tail.b)
}

// versions returns the dump tool's and the server's versions.
func (m *mysql) versions(ctx context.Context) (Info, error) {
	var info Info
	var err error
	if info.Tool, err = (&tool{name: "mysqldump", args: []string{"--version"}}).output(ctx); err != nil {
		return info, err
	}
	if info.Server, err = m.sql(ctx, "SELECT VERSION();\n"); err != nil {
		return info, fmt.Errorf("asking the server's version: %w", err)
	}
	return info, nil
}

func (m *mysql) dumpTool() *tool {
	return m.tool("mysqldump", "--single-transaction", "--skip-dump-date", "--order-by-primary",
		"--skip-extended-insert", "--routines", "--triggers", "--events", "--hex-blob", "--databases", m.c.Database)
}

// complete checks a dump's tail for the trailer.
func (m *mysql) complete(tail []byte) error {
	if !bytes.Contains(tail, []byte(mysqlTrailer)) {
		return fmt.Errorf("%w: mysqldump of %s ended without %q: truncated", dotmesh.ErrUnavailable, m.c.Database, mysqlTrailer)
	}
	return nil
}

func (m *mysql) Restore(ctx context.Context, file string) error {
	if err := m.Drop(ctx); err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	t := m.tool("mysql", "--batch")
	t.stdin = f
	if err := t.run(ctx); err != nil {
		return fmt.Errorf("restoring database %s: %w", m.c.Database, err)
	}
	return nil
}
