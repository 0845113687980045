package rowdiff

import (
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// schema is what a dump says besides rows: its objects by kind, table
// and name, with their definitions, and each table's columns and key.
type schema struct {
	objects map[objKey]string
	tables  map[string]*tableInfo
}

type objKey struct{ object, table, name string }

type tableInfo struct {
	cols, types []string
	key         []string
}

func newSchema() *schema {
	return &schema{objects: map[objKey]string{}, tables: map[string]*tableInfo{}}
}

func (s *schema) table(name string) *tableInfo { return s.tables[name] }

func (s *schema) tableOf(name string) *tableInfo {
	t := s.tables[name]
	if t == nil {
		t = &tableInfo{}
		s.tables[name] = t
	}
	return t
}

// token is one lexical unit of a statement: a word, a quoted identifier
// (unquoted here, quoted set), a string literal (with its quotes) or one
// punctuation character.
type token struct {
	text   string
	quoted bool
	punct  bool
	str    bool
	start  int // offset in the statement
}

func (t token) is(word string) bool { return !t.quoted && !t.str && strings.EqualFold(t.text, word) }

// tokens splits a statement; mysql says backslashes escape in strings.
func tokens(stmt string, mysql bool) []token {
	var out []token
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '`':
			j := i + 1
			var b strings.Builder
			for j < len(stmt) {
				if stmt[j] == c {
					if j+1 < len(stmt) && stmt[j+1] == c {
						b.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(stmt[j])
				j++
			}
			out = append(out, token{text: b.String(), quoted: true, start: i})
			i = j + 1
		case c == '\'':
			j := i + 1
			for j < len(stmt) {
				if mysql && stmt[j] == '\\' {
					j += 2
					continue
				}
				if stmt[j] == '\'' {
					if j+1 < len(stmt) && stmt[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(stmt))
			out = append(out, token{text: stmt[i:j], str: true, start: i})
			i = j
		case isWord(c):
			j := i
			for j < len(stmt) && isWord(stmt[j]) {
				j++
			}
			out = append(out, token{text: stmt[i:j], start: i})
			i = j
		default:
			out = append(out, token{text: stmt[i : i+1], punct: true, start: i})
			i++
		}
	}
	return out
}

func isWord(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// name reads a possibly qualified name at toks[i]; it returns the name
// (PostgreSQL's public schema left out) and the index after it.
func name(toks []token, i int) (string, int) {
	var parts []string
	for i < len(toks) && !toks[i].punct && !toks[i].str {
		parts = append(parts, toks[i].text)
		i++
		if i+1 < len(toks) && toks[i].text == "." && toks[i].punct {
			i++
			continue
		}
		break
	}
	if len(parts) == 2 && parts[0] == "public" {
		parts = parts[1:]
	}
	return strings.Join(parts, "."), i
}

var spaces = regexp.MustCompile(`\s+`)

// normal is a statement's text with runs of white space made one space.
func normal(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }

// skipWords advances past any of words.
func skipWords(toks []token, i int, words ...string) int {
	for i < len(toks) {
		ok := false
		for _, w := range words {
			if toks[i].is(w) {
				ok = true
			}
		}
		if !ok {
			return i
		}
		i++
	}
	return i
}

// parenAt returns the index of the ')' closing the '(' at toks[i].
func parenAt(toks []token, i int) int {
	depth := 0
	for j := i; j < len(toks); j++ {
		if toks[j].punct {
			switch toks[j].text {
			case "(":
				depth++
			case ")":
				depth--
				if depth == 0 {
					return j
				}
			}
		}
	}
	return -1
}

// identList reads "(a, b, ...)" at toks[i] as names.
func identList(toks []token, i int) []string {
	end := parenAt(toks, i)
	if end < 0 {
		return nil
	}
	var out []string
	for _, t := range toks[i+1 : end] {
		if !t.punct && !t.str {
			out = append(out, t.text)
		}
	}
	return out
}

// add records a statement of the dump in s: the schema objects it makes
// or changes; statements about sessions, locks and data are ignored.
func (s *schema) add(stmt string, mysql bool) {
	toks := tokens(stmt, mysql)
	if len(toks) < 2 {
		return
	}
	def := normal(stmt)
	switch {
	case toks[0].is("CREATE"):
		s.create(toks, stmt, def, mysql)
	case toks[0].is("ALTER") && toks[1].is("TABLE"):
		i := skipWords(toks, 2, "ONLY", "IF", "EXISTS")
		t, i := name(toks, i)
		switch {
		case i >= len(toks) || toks[i].is("OWNER") || toks[i].is("DISABLE") && i+1 < len(toks) && toks[i+1].is("KEYS") || toks[i].is("ENABLE") && i+1 < len(toks) && toks[i+1].is("KEYS"):
		case toks[i].is("ADD") && i+2 < len(toks) && toks[i+1].is("CONSTRAINT"):
			c, j := name(toks, i+2)
			if j >= len(toks) {
				break // a constraint without a definition: nothing to record
			}
			s.objects[objKey{"constraint", t, c}] = normal(stmt[toks[j].start:])
			if j+1 < len(toks) && toks[j].is("PRIMARY") && toks[j+1].is("KEY") && j+2 < len(toks) {
				s.tableOf(t).key = identList(toks, j+2)
			}
		case toks[i].is("ALTER") && i+3 < len(toks):
			j := skipWords(toks, i+1, "COLUMN")
			c, j := name(toks, j)
			if j < len(toks) {
				s.objects[objKey{"default", t, c}] = normal(stmt[toks[j].start:])
			}
		default:
			s.objects[objKey{"table option", t, normal(stmt[toks[i].start:])}] = normal(stmt[toks[i].start:])
		}
	case toks[0].is("SELECT") && len(toks) > 6 && toks[1].is("pg_catalog") && toks[3].is("setval"):
		seq := strings.Trim(toks[5].text, "'")
		seq = strings.TrimPrefix(seq, "public.")
		if close := parenAt(toks, 4); close > 6 {
			s.objects[objKey{"sequence value", "", seq}] = normal(stmt[toks[6].start:toks[close].start])
		}
	case toks[0].is("COMMENT") && toks[1].is("ON"):
		if is := slices.IndexFunc(toks, func(t token) bool { return t.is("IS") }); is > 2 {
			s.objects[objKey{"comment", "", normal(stmt[toks[2].start:toks[is].start])}] = normal(stmt[toks[is].start:])
		}
	}
}

func (s *schema) create(toks []token, stmt, def string, mysql bool) {
	i := 1
	// Modifiers before the kind of object: OR REPLACE, UNIQUE, MySQL's
	// ALGORITHM=x DEFINER=`u`@`h` SQL SECURITY y...
	for i < len(toks) {
		t := toks[i]
		switch {
		case t.is("OR") || t.is("REPLACE") || t.is("UNIQUE") || t.is("TEMPORARY") || t.is("TEMP") || t.is("UNLOGGED") || t.is("GLOBAL") || t.is("LOCAL") || t.is("FOREIGN") || t.is("MATERIALIZED") || t.is("RECURSIVE"):
			i++
		case (t.is("ALGORITHM") || t.is("DEFINER") || t.is("SECURITY")) && i+2 < len(toks) && toks[i+1].text == "=":
			i += 3
			for i+1 < len(toks) && toks[i].text == "@" {
				i += 2
			}
		case t.is("SQL") && i+2 < len(toks) && toks[i+1].is("SECURITY"):
			i += 3
		default:
			goto kind
		}
	}
kind:
	if i >= len(toks) {
		return
	}
	kind := strings.ToLower(toks[i].text)
	i = skipWords(toks, i+1, "IF", "NOT", "EXISTS", "CONCURRENTLY")
	if kind == "database" {
		return
	}
	n, j := name(toks, i)
	switch kind {
	case "table":
		s.createTable(n, toks, j, stmt, def)
	case "index", "trigger", "rule", "policy":
		on := slices.IndexFunc(toks[j:], func(t token) bool { return t.is("ON") })
		t := ""
		if on >= 0 {
			k := skipWords(toks, j+on+1, "ONLY", "TABLE")
			t, _ = name(toks, k)
		}
		s.objects[objKey{kind, t, n}] = def
	case "view":
		if toks[1].is("MATERIALIZED") || i > 2 && toks[i-2].is("MATERIALIZED") {
			kind = "materialized view"
		}
		s.objects[objKey{kind, "", n}] = def
	default:
		s.objects[objKey{kind, "", n}] = def
	}
}

// autoIncrement is MySQL's next AUTO_INCREMENT value in a table's
// options: it moves with inserts, so it is data, not schema.
var autoIncrement = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// createTable records a table, its columns and inline constraints.
func (s *schema) createTable(n string, toks []token, i int, stmt, def string) {
	s.objects[objKey{"table", "", n}] = autoIncrement.ReplaceAllString(def, "")
	t := s.tableOf(n)
	if i >= len(toks) || toks[i].text != "(" {
		return
	}
	end := parenAt(toks, i)
	if end < 0 {
		return
	}
	var cols, types []string
	var key []string
	item := i + 1
	flush := func(k int) {
		if k <= item {
			return
		}
		it := toks[item:k]
		text := normal(stmt[it[0].start:toks[k].start])
		first := it[0]
		switch {
		case first.is("CONSTRAINT") && len(it) > 1:
			c, _ := name(it, 1)
			s.objects[objKey{"constraint", n, c}] = text
			if pk := slices.IndexFunc(it, func(t token) bool { return t.is("PRIMARY") }); pk >= 0 && pk+2 < len(it) {
				key = identList(it, pk+2)
			}
		case first.is("PRIMARY") && len(it) > 2:
			s.objects[objKey{"constraint", n, "PRIMARY KEY"}] = text
			key = identList(it, 2)
		case first.is("UNIQUE") || first.is("KEY") || first.is("INDEX") || first.is("FULLTEXT") || first.is("SPATIAL"):
			j := skipWords(it, 0, "UNIQUE", "KEY", "INDEX", "FULLTEXT", "SPATIAL")
			c := text
			if j < len(it) && !it[j].punct {
				c, _ = name(it, j)
			}
			s.objects[objKey{"index", n, c}] = text
		case first.is("FOREIGN") || first.is("CHECK") || first.is("EXCLUDE"):
			s.objects[objKey{"constraint", n, text}] = text
		default:
			col := first.text
			rest := ""
			if len(it) > 1 {
				rest = normal(stmt[it[1].start:toks[k].start])
			}
			cols = append(cols, col)
			typ := ""
			if len(it) > 1 {
				typ = strings.ToLower(it[1].text)
			}
			types = append(types, typ)
			s.objects[objKey{"column", n, col}] = rest
			for x := 1; x+1 < len(it); x++ {
				if it[x].is("PRIMARY") && it[x+1].is("KEY") {
					key = []string{col}
				}
			}
		}
	}
	depth := 0
	for k := i + 1; k < end; k++ {
		if !toks[k].punct {
			continue
		}
		switch toks[k].text {
		case "(":
			depth++
		case ")":
			depth--
		case ",":
			if depth == 0 {
				flush(k)
				item = k + 1
			}
		}
	}
	flush(end)
	t.cols, t.types = cols, types
	if key != nil {
		t.key = key
	}
}

// objectRank orders schema changes: tables first, then what is in them.
var objectRank = map[string]int{"table": 0, "column": 1, "default": 2, "constraint": 3, "index": 4, "trigger": 5}

// diffSchema lists the objects added, dropped or changed from a to b:
// a table added or dropped is one change (not its columns too), and a
// table is changed only when nothing in it is.
func diffSchema(a, b *schema) []dotmesh.SchemaChange {
	var out []dotmesh.SchemaChange
	keys := map[objKey]bool{}
	for k := range a.objects {
		keys[k] = true
	}
	for k := range b.objects {
		keys[k] = true
	}
	whole := map[string]bool{} // tables added or dropped
	inner := map[string]bool{} // tables with a changed part
	for k := range keys {
		_, ina := a.objects[k]
		_, inb := b.objects[k]
		if k.object == "table" && ina != inb {
			whole[k.name] = true
		}
		if k.table != "" && a.objects[k] != b.objects[k] {
			inner[k.table] = true
		}
	}
	for k := range keys {
		oldDef, ina := a.objects[k]
		newDef, inb := b.objects[k]
		c := dotmesh.SchemaChange{Object: k.object, Table: k.table, Name: k.name, Old: oldDef, New: newDef}
		switch {
		case k.table != "" && whole[k.table]:
			continue
		case ina && !inb:
			c.Kind = dotmesh.SchemaDropped
		case !ina && inb:
			c.Kind = dotmesh.SchemaAdded
		case oldDef == newDef || k.object == "table" && inner[k.name]:
			continue
		default:
			c.Kind = dotmesh.SchemaChanged
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		x, y := out[i], out[j]
		tx, ty := x.Table, y.Table
		if tx == "" {
			tx = x.Name
		}
		if ty == "" {
			ty = y.Name
		}
		if tx != ty {
			return tx < ty
		}
		rx, okx := objectRank[x.Object]
		ry, oky := objectRank[y.Object]
		if !okx {
			rx = 9
		}
		if !oky {
			ry = 9
		}
		if rx != ry {
			return rx < ry
		}
		if x.Object != y.Object {
			return x.Object < y.Object
		}
		return x.Name < y.Name
	})
	return out
}
