package source

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestParse(t *testing.T) {
	good := []struct{ kind, url, db, socket, host, port, user, pw string }{
		{PostgreSQL, "postgres://user@/db?host=/run/sock", "db", "/run/sock", "", "", "user", ""},
		{PostgreSQL, "postgresql://u:p%40ss@db.example:6543/shop", "shop", "", "db.example", "6543", "u", "p@ss"},
		{PostgreSQL, "postgres://postgres@/x?host=/tmp/d&port=5499", "x", "/tmp/d", "", "5499", "postgres", ""},
		{MySQL, "mysql://root@unix(/run/mysqld.sock)/db", "db", "/run/mysqld.sock", "", "", "root", ""},
		{MySQL, "mysql://app:s3:cr@t@tcp(10.0.0.1:3307)/shop", "shop", "", "10.0.0.1", "3307", "app", "s3:cr@t"},
		{MySQL, "mysql://app@db/shop", "shop", "", "db", "", "app", ""},
		{Redis, "redis://127.0.0.1:6379/0", "0", "", "127.0.0.1", "6379", "", ""},
		{Redis, "redis://:pw@127.0.0.1:6379", "0", "", "127.0.0.1", "6379", "", "pw"},
		{Redis, "redis+unix:///run/redis.sock?db=2", "2", "/run/redis.sock", "", "", "", ""},
		{SQLite, "sqlite:///path/app.db", "/path/app.db", "", "", "", "", ""},
		{Files, "", "", "", "", "", "", ""},
	}
	for _, g := range good {
		c, err := Parse(g.kind, g.url)
		if err != nil {
			t.Errorf("Parse(%s, %s): %v", g.kind, g.url, err)
			continue
		}
		if c.Database != g.db || c.Socket != g.socket || c.Host != g.host || c.Port != g.port || c.User != g.user || c.Password != g.pw {
			t.Errorf("Parse(%s, %s) = %+v", g.kind, g.url, c)
		}
	}
	bad := []struct{ kind, url string }{
		{"oracle", "oracle://x"},
		{PostgreSQL, "mysql://root@host/db"},
		{PostgreSQL, "postgres://user@host/"},
		{PostgreSQL, "postgres://user@/db"},
		{PostgreSQL, "postgres://user@host:port/db"},
		{PostgreSQL, "postgres://-oProxyCommand@host/db"},
		{MySQL, "mysql://root@unix(relative.sock)/db"},
		{MySQL, "mysql://root@unix(/x.sock/db"},
		{MySQL, "mysql://root@host"},
		{Redis, "redis://127.0.0.1:6379/x"},
		{Redis, "redis+unix://relative"},
		{SQLite, "sqlite://host/path.db"},
		{SQLite, "sqlite:relative.db"},
		{Files, "/some/dir"},
		{PostgreSQL, "postgres://u:secret@host/db\n"},
	}
	for _, b := range bad {
		_, err := Parse(b.kind, b.url)
		if !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("Parse(%s, %q) = %v; want ErrInvalidArgument", b.kind, b.url, err)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@host/db":               "postgres://u:xxxxx@host/db",
		"postgres://u@/db?host=/s":                  "postgres://u@/db?host=/s",
		"mysql://root:pw@unix(/run/mysqld.sock)/db": "mysql://root:xxxxx@unix(/run/mysqld.sock)/db",
		"mysql://root:p@ss@host/db":                 "mysql://root:xxxxx@host/db",
		"redis://:pw@127.0.0.1:6379/0":              "redis://:xxxxx@127.0.0.1:6379/0",
		"sqlite:///a/b.db":                          "sqlite:///a/b.db",
		"user:pw@host":                              "xxxxx@host",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@host/db":               "postgres://u@host/db",
		"postgres://u@/db?host=/s":                  "postgres://u@/db?host=/s",
		"postgres://u@/db?host=/s&password=pw":      "postgres://u@/db?host=/s",
		"postgres://u@h/db?PassWord=pw":             "postgres://u@h/db",
		"mysql://root:pw@unix(/run/mysqld.sock)/db": "mysql://root@unix(/run/mysqld.sock)/db",
		"mysql://root:p@ss@host/db":                 "mysql://root@host/db",
		"redis://:pw@127.0.0.1:6379/0":              "redis://127.0.0.1:6379/0",
		"sqlite:///a/b.db":                          "sqlite:///a/b.db",
		"user:pw@host":                              "user@host",
	} {
		if got := Template(in); got != want {
			t.Errorf("Template(%q) = %q; want %q", in, got, want)
		}
	}
}

// FuzzParse: Parse never panics, and whatever it accepts with a password
// redacts (and templates) to a string without it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"postgres://u:pw@/db?host=/s", "mysql://a:b@unix(/s)/d", "redis://:p@h:1/2", "sqlite:///x", "mysql://u:p@tcp(h:1)/d?x=y"} {
		f.Add(PostgreSQL, s)
		f.Add(MySQL, s)
		f.Add(Redis, s)
		f.Add(SQLite, s)
	}
	f.Fuzz(func(t *testing.T, kind, raw string) {
		c, err := Parse(kind, raw)
		if err != nil {
			if c != nil {
				t.Fatal("error with a result")
			}
			return
		}
		if len(c.Password) >= 4 && strings.Contains(Redact(raw), c.Password) && !strings.Contains(strings.ReplaceAll(raw, c.Password, ""), "@") {
			t.Fatalf("Redact(%q) = %q keeps password %q", raw, Redact(raw), c.Password)
		}
		if len(c.Password) >= 4 && strings.Contains(Template(raw), c.Password) && !strings.Contains(strings.ReplaceAll(raw, c.Password, ""), "@") {
			t.Fatalf("Template(%q) = %q keeps password %q", raw, Template(raw), c.Password)
		}
		if c.Kind != Files && c.Database == "" {
			t.Fatalf("accepted %q without a database", raw)
		}
	})
}

func TestPGNormalizer(t *testing.T) {
	in := "SET x;\n\\restrict abc\nCOPY public.t (a) FROM stdin;\nb\tz\na\ty\n\\.\n\\unrestrict abc\n" + pgTrailer + "\n"
	var out bytes.Buffer
	n := newPGNormalizer(&out)
	for i := 0; i < len(in); i += 3 { // arbitrary write boundaries
		j := min(i+3, len(in))
		n.Write([]byte(in[i:j]))
	}
	if err := n.Close(); err != nil || !n.complete {
		t.Fatal(err, n.complete)
	}
	want := "SET x;\nCOPY public.t (a) FROM stdin;\na\ty\nb\tz\n\\.\n" + pgTrailer + "\n"
	if out.String() != want {
		t.Fatalf("got %q", out.String())
	}
	n = newPGNormalizer(&bytes.Buffer{})
	n.Write([]byte("COPY public.t (a) FROM stdin;\nrow\n"))
	if n.Close() == nil {
		t.Fatal("a dump cut in a COPY block is not an error")
	}
}
