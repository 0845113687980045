// Package source connects dump-backend subdots to live databases: it
// parses connection URLs and runs each kind's own dump and restore tools
// (pg_dump/psql, mysqldump/mysql, redis-cli, sqlite3), checking their exit
// status and normalising their output so that the same database state
// always gives the same bytes (and so the same chunks).
package source

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Kinds of sources.
const (
	Files      = "files"
	PostgreSQL = "postgresql"
	MySQL      = "mysql"
	Redis      = "redis"
	SQLite     = "sqlite"
)

// Kinds lists the kinds, for help texts and errors.
var Kinds = []string{Files, PostgreSQL, MySQL, Redis, SQLite}

// Conn is a parsed connection URL.
type Conn struct {
	Kind     string
	User     string
	Password string // never logged or printed: see Redacted
	Host     string // host name, or "" with Socket
	Port     string
	Socket   string // unix socket path (postgres: its directory)
	Database string // database name; redis: db number; sqlite: file path
	Params   url.Values
	raw      string
}

// Parse checks a source URL for kind:
//
//	files       ""  (the subdot stays a plain directory)
//	postgresql  postgres://user[:pw]@[host][:port]/db[?host=/socket/dir&port=N]
//	mysql       mysql://user[:pw]@unix(/path/mysqld.sock)/db  or  mysql://user[:pw]@host[:port]/db
//	redis       redis://[:pw@]host:port[/N]  or  redis+unix:///path/redis.sock[?db=N]
//	sqlite      sqlite:///absolute/path/app.db
func Parse(kind, raw string) (*Conn, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s source URL %s: %s", dotmesh.ErrInvalidArgument, kind, Redact(raw), fmt.Sprintf(format, args...))
	}
	if strings.ContainsAny(raw, "\x00\n\r") {
		return nil, bad("control characters are not allowed")
	}
	c := &Conn{Kind: kind, raw: raw, Params: url.Values{}}
	switch kind {
	case Files:
		if raw != "" && raw != "files://" {
			return nil, bad("a files source takes no URL (use \"\")")
		}
		return c, nil
	case MySQL:
		if err := parseMySQL(c, raw, bad); err != nil {
			return nil, err
		}
		return c, nil
	case PostgreSQL, Redis, SQLite:
	default:
		return nil, fmt.Errorf("%w: unknown source kind %q; use one of %s", dotmesh.ErrInvalidArgument, kind, strings.Join(Kinds, ", "))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, bad("%v", stripURL(err))
	}
	if u.Opaque != "" || u.Fragment != "" {
		return nil, bad("expected scheme://[user@]host/... without fragment")
	}
	c.Params = u.Query()
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	c.Host, c.Port = u.Hostname(), u.Port()
	switch kind {
	case PostgreSQL:
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return nil, bad("scheme must be postgres://")
		}
		c.Database = strings.TrimPrefix(u.Path, "/")
		if c.Database == "" || strings.Contains(c.Database, "/") {
			return nil, bad("name one database: postgres://user@host/DB")
		}
		if h := c.Params.Get("host"); strings.HasPrefix(h, "/") {
			c.Socket, c.Host = h, ""
		}
		if p := c.Params.Get("port"); p != "" {
			c.Port = p
		}
		if c.Host == "" && c.Socket == "" {
			return nil, bad("give a host or ?host=/socket/directory")
		}
	case Redis:
		switch u.Scheme {
		case "redis":
			if c.Host == "" {
				return nil, bad("give host:port")
			}
			c.Database = strings.TrimPrefix(u.Path, "/")
		case "redis+unix", "unix":
			c.Socket, c.Host = u.Path, ""
			c.Database = c.Params.Get("db")
			if !strings.HasPrefix(c.Socket, "/") {
				return nil, bad("give the socket's absolute path: redis+unix:///path/redis.sock")
			}
		default:
			return nil, bad("scheme must be redis:// or redis+unix://")
		}
		if c.Database == "" {
			c.Database = "0"
		}
		if !isDigits(c.Database) || len(c.Database) > 5 {
			return nil, bad("the database must be a number")
		}
	case SQLite:
		if u.Scheme != "sqlite" || u.Host != "" || u.User != nil {
			return nil, bad("use sqlite:///absolute/path/file.db")
		}
		c.Database = path.Clean(u.Path)
		if !strings.HasPrefix(u.Path, "/") || c.Database == "/" {
			return nil, bad("the database file needs an absolute path")
		}
	}
	if c.Port != "" && (!isDigits(c.Port) || len(c.Port) > 5) {
		return nil, bad("port %q is not a number", c.Port)
	}
	if strings.HasPrefix(c.Host, "-") || strings.HasPrefix(c.User, "-") || strings.HasPrefix(c.Database, "-") {
		return nil, bad("host, user and database must not start with '-'")
	}
	return c, nil
}

// parseMySQL reads the Go driver style DSN in URL clothing:
// mysql://user[:pw]@unix(/sock)/db or mysql://user[:pw]@tcp(host:port)/db
// or mysql://user[:pw]@host[:port]/db.
func parseMySQL(c *Conn, raw string, bad func(string, ...any) error) error {
	rest, ok := strings.CutPrefix(raw, "mysql://")
	if !ok {
		if rest, ok = strings.CutPrefix(raw, "mariadb://"); !ok {
			return bad("scheme must be mysql://")
		}
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		q, err := url.ParseQuery(rest[i+1:])
		if err != nil {
			return bad("query: %v", err)
		}
		c.Params, rest = q, rest[:i]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		cred := rest[:at]
		rest = rest[at+1:]
		user, pw, _ := strings.Cut(cred, ":")
		var err error
		if c.User, err = url.PathUnescape(user); err != nil {
			return bad("user: %v", err)
		}
		if c.Password, err = url.PathUnescape(pw); err != nil {
			return bad("password is not URL-escaped properly")
		}
	}
	var addr string
	switch {
	case strings.HasPrefix(rest, "unix("):
		end := strings.Index(rest, ")")
		if end < 0 {
			return bad("unclosed unix(")
		}
		c.Socket, rest = rest[len("unix("):end], rest[end+1:]
		if !strings.HasPrefix(c.Socket, "/") {
			return bad("give the socket's absolute path: unix(/run/mysqld/mysqld.sock)")
		}
	case strings.HasPrefix(rest, "tcp("):
		end := strings.Index(rest, ")")
		if end < 0 {
			return bad("unclosed tcp(")
		}
		addr, rest = rest[len("tcp("):end], rest[end+1:]
	default:
		end := strings.IndexByte(rest, '/')
		if end < 0 {
			end = len(rest)
		}
		addr, rest = rest[:end], rest[end:]
	}
	if c.Socket == "" {
		h, p, found := strings.Cut(addr, ":")
		c.Host, c.Port = h, p
		if c.Host == "" {
			return bad("give a host or unix(/socket)")
		}
		if strings.ContainsAny(c.Host, "()") {
			return bad("host %q is no host name or address: write tcp(host:port) or unix(/socket)", c.Host)
		}
		if found && (!isDigits(p) || len(p) > 5) {
			return bad("port %q is not a number", p)
		}
	}
	db, ok := strings.CutPrefix(rest, "/")
	if !ok || db == "" || strings.ContainsAny(db, "/`") {
		return bad("name one database: mysql://user@host/DB")
	}
	c.Database = db
	if strings.HasPrefix(c.Host, "-") || strings.HasPrefix(c.User, "-") || strings.HasPrefix(c.Database, "-") {
		return bad("host, user and database must not start with '-'")
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// stripURL drops the URL (which may hold a password) from a url.Error.
func stripURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// Redact returns raw with any password replaced by "xxxxx", for lists and
// logs. Unparseable input is cut at the '@' to be safe.
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "xxxxx" + raw[i:]
		}
		return raw
	}
	at := strings.LastIndex(rest, "@")
	if slash := strings.IndexAny(rest, "/?"); at >= 0 && slash >= 0 && slash < at && !strings.HasPrefix(rest[slash:], "/") {
		at = -1 // '@' in the query only
	}
	if at < 0 {
		return raw
	}
	cred := rest[:at]
	user, _, hasPw := strings.Cut(cred, ":")
	if !hasPw {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// Template returns raw without its password (also a password= query
// parameter), for a binding that travels to other nodes: there the same
// URL names the local database of that name, and its password is given
// anew. Unparseable credentials are cut at the '@' to be safe.
func Template(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			user, _, _ := strings.Cut(raw[:i], ":")
			return user + raw[i:]
		}
		return raw
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 && !strings.Contains(rest[q:], "@") {
		var keep []string
		for _, p := range strings.Split(rest[q+1:], "&") {
			if k, _, _ := strings.Cut(p, "="); !strings.Contains(strings.ToLower(k), "password") {
				keep = append(keep, p)
			}
		}
		rest = rest[:q]
		if len(keep) > 0 {
			rest += "?" + strings.Join(keep, "&")
		}
	}
	red := Redact(scheme + "://" + rest)
	if user, host, ok := strings.Cut(red, ":xxxxx@"); ok {
		if strings.HasSuffix(user, "://") {
			return user + host // no user name: no '@' either
		}
		return user + "@" + host
	}
	return red
}

// Redacted is the URL for people.
func (c *Conn) Redacted() string { return Redact(c.raw) }

// String is Redacted, so a Conn never leaks its password through %v.
func (c *Conn) String() string { return c.Redacted() }
