package source

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// escapeCred escapes a user or password for a MySQL URL.
func escapeCred(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// mysqlURL writes c back as a MySQL URL: the encoder parseMySQL's output
// must round-trip through.
func mysqlURL(c *Conn) string {
	var b strings.Builder
	b.WriteString("mysql://")
	if c.User != "" || c.Password != "" {
		b.WriteString(escapeCred(c.User))
		if c.Password != "" {
			b.WriteString(":" + escapeCred(c.Password))
		}
		b.WriteString("@")
	}
	addr := c.Host
	if c.Port != "" {
		addr += ":" + c.Port
	}
	switch {
	case c.Socket != "":
		b.WriteString("unix(" + c.Socket + ")")
	case strings.Contains(addr, "/"): // only tcp(...) can hold a '/'
		b.WriteString("tcp(" + addr + ")")
	default:
		b.WriteString(addr)
	}
	b.WriteString("/" + c.Database)
	if len(c.Params) > 0 {
		b.WriteString("?" + c.Params.Encode())
	}
	return b.String()
}

// FuzzParseMySQL: an accepted MySQL URL names one database, a host or an
// absolute socket, a numeric port, nothing that a tool would take for an
// option, and writes back as a URL that parses to the same connection; a
// refused one is invalid input.
func FuzzParseMySQL(f *testing.F) {
	for _, s := range []string{"mysql://u:p@unix(/run/mysqld/mysqld.sock)/db", "mysql://u@tcp(h:3306)/d?x=y", "mariadb://u:p%40x@h:1/d",
		"mysql://a@b@h/d", "mysql://u@-h/d", "mysql://u@h:99999/d", "mysql://u@unix(rel)/d", "mysql://u@h/a/b", "mysql://u@h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := Parse(MySQL, raw)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) || c != nil {
				t.Fatalf("%q: %v, %v", raw, c, err)
			}
			return
		}
		switch {
		case c.Database == "" || strings.ContainsAny(c.Database, "/`"):
			t.Fatalf("%q: database %q", raw, c.Database)
		case c.Socket == "" && c.Host == "", c.Socket != "" && !strings.HasPrefix(c.Socket, "/"):
			t.Fatalf("%q: host %q, socket %q", raw, c.Host, c.Socket)
		case c.Port != "" && !isDigits(c.Port):
			t.Fatalf("%q: port %q", raw, c.Port)
		case strings.HasPrefix(c.Host, "-"), strings.HasPrefix(c.User, "-"), strings.HasPrefix(c.Database, "-"):
			t.Fatalf("%q: an option-like part in %+v", raw, c)
		}
		again := mysqlURL(c)
		c2, err := Parse(MySQL, again)
		if err != nil {
			t.Fatalf("%q -> %q: %v", raw, again, err)
		}
		if c2.User != c.User || c2.Password != c.Password || c2.Host != c.Host || c2.Port != c.Port ||
			c2.Socket != c.Socket || c2.Database != c.Database || c2.Params.Encode() != c.Params.Encode() {
			t.Fatalf("%q -> %q: %+v, want %+v", raw, again, c2, c)
		}
	})
}
