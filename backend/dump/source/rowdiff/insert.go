package rowdiff

import (
	"fmt"
	"io"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// insertDump reads a dump of statements with one INSERT a row: mysqldump
// as the mysql source runs it (--skip-extended-insert, rows in primary
// key order) and SQLite's .dump (rows in rowid order). Tables whose
// order is that of an integer key are merged by it (intKey); no other
// order can be reproduced here (collations, hidden rowids), so the rest
// are compared by hash. A row is the text of its VALUES tuple, literals
// as the dump writes them.
type insertDump struct {
	r      *sqlReader
	s      *schema
	mysql  bool
	table  string
	next   string // the table of a row read ahead
	ahead  []byte // that row
	done   bool
	rowBuf []byte
}

func newMySQL(r io.Reader) *insertDump {
	return &insertDump{r: newSQLReader(r, MySQL), s: newSchema(), mysql: true}
}

func newSQLite(r io.Reader) *insertDump {
	return &insertDump{r: newSQLReader(r, SQLite), s: newSchema()}
}

func (d *insertDump) schema() *schema { return d.s }

// read returns the next INSERT's table and row, recording other
// statements in the schema; io.EOF at the end.
func (d *insertDump) read() (string, []byte, error) {
	for {
		stmt, line, err := d.r.statement()
		if err != nil {
			return "", nil, err
		}
		st := string(stmt)
		toks := tokens(st, d.mysql)
		if len(toks) < 3 || !toks[0].is("INSERT") || !toks[1].is("INTO") {
			d.s.add(st, d.mysql)
			continue
		}
		t, i := name(toks, 2)
		if i < len(toks) && toks[i].text == "(" {
			end := parenAt(toks, i)
			if end < 0 {
				return "", nil, fmt.Errorf("%w: line %d: unterminated column list in INSERT", dotmesh.ErrCorrupt, line)
			}
			i = end + 1
		}
		if t == "" || i+1 >= len(toks) || !toks[i].is("VALUES") || toks[i+1].text != "(" {
			return "", nil, fmt.Errorf("%w: line %d: unexpected INSERT %q", dotmesh.ErrCorrupt, line, clip(stmt))
		}
		if parenAt(toks, i+1) != len(toks)-1 {
			return "", nil, fmt.Errorf("%w: line %d: INSERT into %s is not one row", dotmesh.ErrCorrupt, line, t)
		}
		d.rowBuf = append(d.rowBuf[:0], st[toks[i+1].start:]...)
		return t, d.rowBuf, nil
	}
}

func (d *insertDump) nextTable() (string, error) {
	if err := drain(d.nextRow); err != nil {
		return "", err
	}
	if d.next == "" {
		if d.done {
			return "", io.EOF
		}
		t, row, err := d.read()
		if err == io.EOF {
			d.done = true
			return "", io.EOF
		}
		if err != nil {
			return "", err
		}
		d.next, d.ahead = t, append(d.ahead[:0], row...)
	}
	d.table, d.next = d.next, ""
	return d.table, nil
}

func (d *insertDump) nextRow() ([]byte, error) {
	if d.table == "" {
		return nil, io.EOF
	}
	if d.ahead != nil {
		row := d.ahead
		d.ahead = nil
		d.rowBuf = append(d.rowBuf[:0], row...)
		return d.rowBuf, nil
	}
	t, row, err := d.read()
	if err == io.EOF {
		d.done, d.table = true, ""
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	if t != d.table {
		d.next, d.ahead, d.table = t, append([]byte(nil), row...), ""
		return nil, io.EOF
	}
	return row, nil
}

// intKey implements the keyed merge for tables whose rows come in the
// order of an integer primary key: MariaDB/MySQL's with integer key
// columns, SQLite's whose key is its rowid (one INTEGER column).
func (d *insertDump) intKey(table string) *intKey {
	t := d.s.table(table)
	if t == nil || len(t.key) == 0 || !d.mysql && len(t.key) != 1 {
		return nil
	}
	idx := keyIndex(t, t.key)
	if idx == nil {
		return nil
	}
	for _, i := range idx {
		if i >= len(t.types) || !intType(t.types[i], d.mysql) {
			return nil
		}
	}
	return &intKey{n: len(idx), key: func(row []byte) ([]string, error) {
		vals, err := d.values(table, row)
		if err != nil {
			return nil, err
		}
		k, ok := keyOf(vals, idx)
		if !ok {
			return nil, fmt.Errorf("%w: table %s: row %q has fewer values than columns", dotmesh.ErrCorrupt, table, clip(row))
		}
		for _, v := range k {
			if !isInt(v) {
				return nil, fmt.Errorf("%w: table %s: key %s of row %q is not an integer", dotmesh.ErrCorrupt, table, v, clip(row))
			}
		}
		return k, nil
	}}
}

func intType(typ string, mysql bool) bool {
	if !mysql {
		return typ == "integer"
	}
	switch typ {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

func isInt(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// values splits a VALUES tuple into its literals.
func (d *insertDump) values(table string, row []byte) ([]string, error) {
	toks := tokens(string(row), d.mysql)
	if len(toks) < 2 || toks[0].text != "(" || toks[len(toks)-1].text != ")" {
		return nil, fmt.Errorf("%w: table %s: row %q is not a VALUES tuple", dotmesh.ErrCorrupt, table, clip(row))
	}
	var out []string
	depth, start := 0, 1
	s := string(row)
	for k := 1; k < len(toks); k++ {
		t := toks[k]
		if !t.punct {
			continue
		}
		switch t.text {
		case "(":
			depth++
		case ")", ",":
			if t.text == ")" && depth > 0 {
				depth--
				continue
			}
			if depth == 0 {
				if k == start {
					return nil, fmt.Errorf("%w: table %s: row %q has an empty value", dotmesh.ErrCorrupt, table, clip(row))
				}
				out = append(out, s[toks[start].start:t.start])
				start = k + 1
			}
		}
	}
	for i, v := range out {
		out[i] = trimSpace(v)
	}
	return out, nil
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\n' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\n' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
