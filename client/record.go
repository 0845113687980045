package client

import (
	"bytes"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// recordDecoder decodes the commit records of an api.HistoryLines
// answer, one line each. Hand-written for the shape encoding/json gives
// a Commit (the node sends its records as stored): names without
// escapes, each once, values strings (metadata and info: objects of
// strings), "pruned" a literal, no whitespace. Strings that repeat from
// one record to the next (dot, branch, author, and an id that is the
// last record's parent) are made once, so that a record costs about two
// small allocations, not one per field or a reflective decode (the JSON
// page's decoder was half of `dm log`'s CPU for 10,000 commits; one
// string of each line, a quarter, in page faults of fresh memory). A line
// of any other shape is left to the JSON v2 decoder, which reads it as
// it reads a JSON page's commit: the fast path gives what that decoder
// gives or declines (FuzzRecordDecoder checks this).
type recordDecoder struct {
	ik *infoKeys // nil: every Info key
	// The strings of the last record, for the next to share.
	parent, dot, branch, author string
}

// str is b as a string: last when equal (no allocation), else a new one
// that becomes last.
func str(b []byte, last *string) string {
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}

// decode decodes one record line (without its newline) into c.
func (d *recordDecoder) decode(line []byte, c *dotmesh.Commit) error {
	*c = dotmesh.Commit{}
	if d.fast(line, c) {
		d.parent = string(c.Parent)
		return nil
	}
	*c = dotmesh.Commit{}
	return d.general(line, c)
}

// general is decode by the JSON v2 decoder.
func (d *recordDecoder) general(line []byte, c *dotmesh.Commit) error {
	if d.ik == nil {
		return jsonv2.Unmarshal(line, c)
	}
	return jsonv2.Unmarshal(line, c, jsonv2.WithUnmarshalers(jsonv2.UnmarshalFromFunc(
		func(dec *jsontext.Decoder, c *dotmesh.Commit) error { return d.ik.decodeCommit(dec, c) })))
}

// The fields of a record, as bits of what fast has seen.
const (
	seenID = 1 << iota
	seenDot
	seenBranch
	seenParent
	seenAuthor
	seenTime
	seenMessage
	seenMetadata
	seenInfo
	seenPruned
)

// fast decodes s, a record of the usual shape, into c, and reports
// whether it could; when not, c holds part of s.
func (d *recordDecoder) fast(s []byte, c *dotmesh.Commit) bool {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return false
	}
	i := 1
	seen := 0
	if d.ik != nil {
		d.ik.kv = d.ik.kv[:0]
	}
	for i < len(s)-1 {
		if seen != 0 {
			if s[i] != ',' {
				return false
			}
			i++
		}
		name, next, ok := plainString(s, i)
		if !ok || next >= len(s) || s[next] != ':' {
			return false
		}
		i = next + 1
		var bit int
		var v string
		switch string(name) {
		case "id":
			bit = seenID
			last := d.parent
			v, i, ok = fieldString(s, i, &last)
			c.ID = dotmesh.CommitID(v)
		case "dot":
			bit = seenDot
			v, i, ok = fieldString(s, i, &d.dot)
			c.Dot = dotmesh.DotID(v)
		case "branch":
			bit = seenBranch
			c.Branch, i, ok = fieldString(s, i, &d.branch)
		case "parent":
			bit = seenParent
			v, i, ok = fieldString(s, i, nil)
			c.Parent = dotmesh.CommitID(v)
		case "author":
			bit = seenAuthor
			c.Author, i, ok = fieldString(s, i, &d.author)
		case "message":
			bit = seenMessage
			c.Message, i, ok = fieldString(s, i, nil)
		case "time":
			bit = seenTime
			var b []byte
			if b, i, ok = plainString(s, i); ok {
				c.Time, ok = canonicalTime(b)
			}
		case "metadata":
			bit = seenMetadata
			c.Metadata, i, ok = stringMap(s, i, nil)
		case "info":
			bit = seenInfo
			if d.ik == nil {
				var m map[string]string
				m, i, ok = stringMap(s, i, nil)
				c.Info = m
			} else {
				_, i, ok = stringMap(s, i, d.ik)
				d.ik.finish(&c.Info)
			}
		case "pruned":
			bit = seenPruned
			switch {
			case len(s)-i >= 4 && string(s[i:i+4]) == "true":
				c.Pruned, i = true, i+4
			case len(s)-i >= 5 && string(s[i:i+5]) == "false":
				c.Pruned, i = false, i+5
			default:
				ok = false
			}
		default:
			return false // an unknown name: the decoder skips its value
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return i == len(s)-1
}

// plainString returns the string s quotes at i when it has no escapes,
// control characters or invalid UTF-8, and the index after it.
func plainString(s []byte, i int) ([]byte, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return nil, 0, false
	}
	ascii := true
	for j := i + 1; j < len(s); j++ {
		switch b := s[j]; {
		case b == '"':
			v := s[i+1 : j]
			if !ascii && !utf8.Valid(v) {
				return nil, 0, false
			}
			return v, j + 1, true
		case b == '\\' || b < 0x20:
			return nil, 0, false
		case b >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}

// fieldString is plainString as a string (shared with *last when equal,
// see str), also unquoting a string with escapes (a message of several
// lines).
func fieldString(s []byte, i int, last *string) (string, int, bool) {
	if v, next, ok := plainString(s, i); ok {
		if last == nil {
			return string(v), next, true
		}
		return str(v, last), next, true
	}
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++ // the escaped byte: AppendUnquote checks the escape
		case '"':
			b, err := jsontext.AppendUnquote(nil, s[i:j+1])
			if err != nil {
				return "", 0, false
			}
			return string(b), j + 1, true
		}
	}
	return "", 0, false
}

// stringMap reads the object of plain strings at i: into a new map
// without ik, else the keys and values ik keeps into ik.kv. An empty
// object, a name twice or any other value is not the usual shape.
func stringMap(s []byte, i int, ik *infoKeys) (map[string]string, int, bool) {
	if i >= len(s) || s[i] != '{' {
		return nil, 0, false
	}
	i++
	var m map[string]string
	if ik == nil {
		m = make(map[string]string, 4)
	}
	var seenArr [16][]byte
	seen := seenArr[:0] // the names so far: a name twice is an error of the decoder's
	for i < len(s) && s[i] != '}' {
		if len(seen) > 0 {
			if s[i] != ',' {
				return nil, 0, false
			}
			i++
		}
		qstart := i
		k, next, ok := plainString(s, i)
		if !ok || next >= len(s) || s[next] != ':' {
			return nil, 0, false
		}
		qname := s[qstart:next]
		vstart := next + 1
		v, next, ok := plainString(s, vstart)
		if !ok {
			return nil, 0, false
		}
		qvalue := s[vstart:next]
		i = next
		if len(seen) == cap(seenArr) {
			return nil, 0, false // many: the decoder's
		}
		for _, n := range seen {
			if bytes.Equal(n, k) {
				return nil, 0, false
			}
		}
		seen = append(seen, k)
		if ik == nil {
			m[string(k)] = string(v)
			continue
		}
		keep, err := ik.kept(jsontext.Value(qname))
		if err != nil {
			return nil, 0, false
		}
		if keep {
			ks, err1 := ik.str(jsontext.Value(qname))
			vs, err2 := ik.str(jsontext.Value(qvalue))
			if err1 != nil || err2 != nil {
				return nil, 0, false
			}
			ik.kv = append(ik.kv, ks, vs)
		}
	}
	if len(seen) == 0 || i >= len(s) {
		return nil, 0, false
	}
	return m, i + 1, true
}

// canonicalTime parses v, a time as encoding/json writes one (RFC 3339,
// up to nine digits of fraction, Z or an offset in range), as the JSON v2
// decoder does; any other spelling is not the usual shape.
func canonicalTime(v []byte) (time.Time, bool) {
	const date = "0000-00-00T00:00:00"
	if len(v) < len(date)+1 {
		return time.Time{}, false
	}
	for k := 0; k < len(date); k++ {
		if (date[k] == '0') != isDigit(v[k]) || (date[k] != '0' && v[k] != date[k]) {
			return time.Time{}, false
		}
	}
	rest := v[len(date):]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 || n > 10 {
			return time.Time{}, false
		}
		rest = rest[n:]
	}
	switch {
	case string(rest) == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigit(rest[1]) && isDigit(rest[2]) && isDigit(rest[4]) && isDigit(rest[5]) &&
		string(rest[1:3]) <= "23" && string(rest[4:6]) <= "59":
	default:
		return time.Time{}, false
	}
	var t time.Time
	err := t.UnmarshalText(v) // as the decoder, with the checks above
	return t, err == nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }
