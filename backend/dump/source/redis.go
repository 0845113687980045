package source

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// redis dumps a fresh RDB of the whole instance (every numbered database)
// with `redis-cli --rdb`, which has the server fork a point-in-time
// snapshot, and rewrites it deterministically (see rdb.go). Restore
// flushes the instance and RESTOREs every key through `redis-cli --pipe`.
// The URL's /N only selects the database for activate's init commands.
type redis struct{ c *Conn }

func (r *redis) FileName() string { return "redis.rdb" }

func (r *redis) cli(args ...string) *tool {
	var conn []string
	if r.c.Socket != "" {
		conn = []string{"-s", r.c.Socket}
	} else {
		conn = []string{"-h", r.c.Host}
		if r.c.Port != "" {
			conn = append(conn, "-p", r.c.Port)
		}
	}
	if r.c.User != "" {
		conn = append(conn, "--user", r.c.User)
	}
	t := &tool{name: "redis-cli", args: append(conn, args...), secret: r.c.Password}
	if r.c.Password != "" {
		t.env = []string{"REDISCLI_AUTH=" + r.c.Password}
	}
	return t
}

// call runs one command and fails on an error reply, which redis-cli
// prints but does not turn into an exit status.
func (r *redis) call(ctx context.Context, args ...string) (string, error) {
	out, err := r.cli(append([]string{"-n", r.c.Database}, args...)...).output(ctx)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(out, "ERR") || strings.HasPrefix(out, "NOAUTH") || strings.HasPrefix(out, "WRONGPASS") || strings.HasPrefix(out, "NOPERM") {
		return "", fmt.Errorf("%w: redis %s: %s", dotmesh.ErrUnavailable, args[0], out)
	}
	return out, nil
}

var keysRE = regexp.MustCompile(`(?m)^db\d+:keys=(\d+)`)

func (r *redis) Exists(ctx context.Context) (bool, error) {
	out, err := r.call(ctx, "INFO", "keyspace")
	if err != nil {
		return false, err
	}
	return keysRE.MatchString(out), nil
}

func (r *redis) Create(ctx context.Context, schema string) error {
	if strings.TrimSpace(schema) == "" {
		return nil
	}
	t := r.cli("-n", r.c.Database)
	t.stdin = strings.NewReader(schema + "\n")
	out, err := t.output(ctx)
	if err == nil && strings.Contains(out, "ERR") {
		err = fmt.Errorf("%w: redis init commands: %s", dotmesh.ErrUnavailable, out)
	}
	return err
}

func (r *redis) Drop(ctx context.Context) error {
	_, err := r.call(ctx, "FLUSHALL")
	return err
}

func (r *redis) Dump(ctx context.Context, w io.Writer) (Info, error) {
	info, err := r.versions(ctx)
	if err != nil {
		return info, err
	}
	tmp, err := os.CreateTemp(scratchDir(w), ".dm-redis-*.rdb")
	if err != nil {
		return info, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	info.Time = time.Now().UTC()
	if err := r.cli("--rdb", tmp.Name()).run(ctx); err != nil {
		return info, err
	}
	return info, writeRDB(tmp.Name(), w)
}

// versions returns redis-cli's and the server's versions.
func (r *redis) versions(ctx context.Context) (Info, error) {
	var info Info
	var err error
	if info.Tool, err = (&tool{name: "redis-cli", args: []string{"--version"}}).output(ctx); err != nil {
		return info, err
	}
	srv, err := r.call(ctx, "INFO", "server")
	if err != nil {
		return info, err
	}
	if m := regexp.MustCompile(`redis_version:(\S+)`).FindStringSubmatch(srv); m != nil {
		info.Server = "Redis " + m[1]
	}
	return info, nil
}

// writeRDB writes the RDB that redis-cli fetched into file to w,
// normalized.
func writeRDB(file string, w io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rdb, err := parseRDB(f)
	if err != nil {
		return fmt.Errorf("%w: the RDB redis-cli fetched: %w", dotmesh.ErrUnavailable, err)
	}
	return rdb.writeNormalized(w)
}

func (r *redis) Restore(ctx context.Context, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	rdb, err := parseRDB(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%w: dump %s: %w", dotmesh.ErrCorrupt, file, err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(rdb.writeRESP(pw)) }()
	t := r.cli("--pipe")
	t.stdin = pr
	out, err := t.output(ctx)
	pr.Close()
	if err != nil {
		return err
	}
	if m := regexp.MustCompile(`errors: (\d+)`).FindStringSubmatch(out); m == nil || m[1] != "0" {
		return fmt.Errorf("%w: redis-cli --pipe restoring %s: %s", dotmesh.ErrUnavailable, file, strings.Join(strings.Fields(out), " "))
	}
	return nil
}

// writeRESP writes the commands that make an instance equal to f.
func (f *rdbFile) writeRESP(out io.Writer) error {
	w := bufio.NewWriterSize(out, 1<<20)
	cmd := func(args ...[]byte) {
		fmt.Fprintf(w, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(w, "$%d\r\n", len(a))
			w.Write(a)
			w.WriteString("\r\n")
		}
	}
	b := func(s string) []byte { return []byte(s) }
	cmd(b("FLUSHALL"))
	if len(f.functions) > 0 {
		cmd(b("FUNCTION"), b("FLUSH"))
	}
	for _, fn := range f.functions {
		cmd(b("FUNCTION"), b("LOAD"), b("REPLACE"), fn)
	}
	db := ^uint64(0)
	for i := range f.entries {
		e := &f.entries[i]
		if e.db != db {
			db = e.db
			cmd(b("SELECT"), b(strconv.FormatUint(db, 10)))
		}
		p, err := f.restorePayload(e)
		if err != nil {
			return err
		}
		cmd(b("RESTORE"), e.key, b(strconv.FormatInt(e.expire, 10)), p, b("REPLACE"), b("ABSTTL"))
	}
	return w.Flush()
}

var _ = bytes.Compare
