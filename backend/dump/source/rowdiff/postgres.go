package rowdiff

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// pgDump reads a plain pg_dump as the postgresql source writes it:
// statements, and COPY ... FROM stdin blocks of tab-separated rows in
// text format, one a line, sorted (source.CompareRows). Primary keys come
// after the data, as ALTER TABLE ... ADD CONSTRAINT ... PRIMARY KEY.
type pgDump struct {
	r     *sqlReader
	s     *schema
	table string // the COPY block being read
	line  int64
}

func newPostgres(r io.Reader) *pgDump {
	return &pgDump{r: newSQLReader(r, PostgreSQL), s: newSchema()}
}

func (p *pgDump) schema() *schema { return p.s }

func (p *pgDump) nextTable() (string, error) {
	if err := drain(p.nextRow); err != nil {
		return "", err
	}
	for {
		stmt, line, err := p.r.statement()
		if err != nil {
			return "", err
		}
		st := string(stmt)
		toks := tokens(st, false)
		if len(toks) < 4 || !toks[0].is("COPY") {
			p.s.add(st, false)
			continue
		}
		n, i := name(toks, 1)
		if n == "" || i >= len(toks) || toks[len(toks)-1].text != "stdin" {
			return "", fmt.Errorf("%w: line %d: unexpected COPY statement %q", dotmesh.ErrCorrupt, line, clip(stmt))
		}
		t := p.s.tableOf(n)
		if toks[i].text == "(" {
			cols := identList(toks, i)
			if len(t.cols) != len(cols) {
				t.types = nil
			}
			t.cols = cols
		}
		// The rest of the COPY line is its newline.
		if len(bytes.TrimSpace(p.r.pend)) > 0 {
			return "", fmt.Errorf("%w: line %d: text after COPY ... FROM stdin;", dotmesh.ErrCorrupt, line)
		}
		p.r.pend = nil
		p.table = n
		return n, nil
	}
}

func (p *pgDump) nextRow() ([]byte, error) {
	if p.table == "" {
		return nil, io.EOF
	}
	l, err := p.r.readLine()
	if err == io.EOF || err == nil && l[len(l)-1] != '\n' {
		return nil, fmt.Errorf("%w: the dump ends inside the rows of table %s (line %d): truncated", dotmesh.ErrCorrupt, p.table, p.r.line)
	}
	if err != nil {
		return nil, err
	}
	l = l[:len(l)-1]
	if string(l) == `\.` {
		p.table = ""
		return nil, io.EOF
	}
	return l, nil
}

// values decodes a COPY text row into SQL literals: \N is NULL, numbers
// of numeric columns stay bare, the rest are quoted strings.
func (p *pgDump) values(table string, row []byte) ([]string, error) {
	t := p.s.table(table)
	fields := bytes.Split(row, []byte{'\t'})
	out := make([]string, len(fields))
	for i, f := range fields {
		if string(f) == `\N` {
			out[i] = "NULL"
			continue
		}
		s, err := copyUnescape(f)
		if err != nil {
			return nil, fmt.Errorf("%w: table %s: row %q: %v", dotmesh.ErrCorrupt, table, clip(row), err)
		}
		if t != nil && i < len(t.types) && pgNumeric(t.types[i]) && isNumber(s) {
			out[i] = s
		} else {
			out[i] = quoteLiteral(s)
		}
	}
	return out, nil
}

func pgNumeric(typ string) bool {
	switch typ {
	case "integer", "bigint", "smallint", "numeric", "real", "double", "oid", "decimal", "int", "int4", "int8", "int2", "float4", "float8":
		return true
	}
	return false
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c == '.' || (c == '-' || c == '+') && i == 0 || c == 'e' || c == 'E') {
			return false
		}
	}
	return true
}

// copyUnescape decodes COPY text format's backslash escapes.
func copyUnescape(f []byte) (string, error) {
	if bytes.IndexByte(f, '\\') < 0 {
		return string(f), nil
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(f) {
			return "", fmt.Errorf("a backslash ends a value")
		}
		switch c = f[i]; c {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'x':
			v, k := 0, 0
			for k < 2 && i+1 < len(f) && hexVal(f[i+1]) >= 0 {
				v = v*16 + hexVal(f[i+1])
				i++
				k++
			}
			if k == 0 {
				b.WriteByte('x')
			} else {
				b.WriteByte(byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; k++ {
				v = v*8 + int(f[i+1]-'0')
				i++
			}
			b.WriteByte(byte(v))
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// quoteLiteral writes s as a SQL string literal: '...' with quotes
// doubled, or E'...' with backslash escapes when s holds control
// characters, backslashes or bytes that are not UTF-8.
func quoteLiteral(s string) string {
	valid := utf8.ValidString(s)
	plain := valid
	for _, c := range []byte(s) {
		if c < 0x20 || c == 0x7f || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	var b strings.Builder
	b.WriteString("E'")
	for _, c := range []byte(s) {
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\'':
			b.WriteString(`\'`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c == 0x7f || c >= 0x80 && !valid:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
