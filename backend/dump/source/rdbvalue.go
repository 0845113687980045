package source

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// RDBValue decodes a value's RDB encoding (RDBEntry.Value of type typ)
// into its type's name and its contents in a canonical form, the same
// whatever encoding Redis chose: a string, a list in order, set members
// sorted, hash fields sorted, sorted set members by score. Elements are
// quoted as SQL strings are ('it”s'), numbers of sorted sets bare.
func RDBValue(typ byte, value []byte) (kind string, contents string, err error) {
	r := &rdbReader{r: bufio.NewReader(bytes.NewReader(value))}
	var elems [][]byte // list, set: members; hash, zset: pairs
	switch typ {
	case 0:
		s, err := r.str()
		if err != nil {
			return "", "", err
		}
		return "string", QuoteRDB(s), nil
	case 1, 2, 4: // list, set, hash of strings
		n, _, err := r.length()
		if err != nil {
			return "", "", err
		}
		if typ == 4 {
			n *= 2
		}
		for i := uint64(0); i < n; i++ {
			s, err := r.str()
			if err != nil {
				return "", "", err
			}
			elems = append(elems, s)
		}
	case 3, 5: // zset: member, score
		n, _, err := r.length()
		if err != nil {
			return "", "", err
		}
		for i := uint64(0); i < n; i++ {
			m, err := r.str()
			if err != nil {
				return "", "", err
			}
			var score string
			if typ == 5 {
				p, err := r.full(8)
				if err != nil {
					return "", "", err
				}
				score = strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(p)), 'g', -1, 64)
			} else {
				l, err := r.byte()
				if err != nil {
					return "", "", err
				}
				switch l {
				case 253:
					score = "nan"
				case 254:
					score = "inf"
				case 255:
					score = "-inf"
				default:
					p, err := r.full(uint64(l))
					if err != nil {
						return "", "", err
					}
					score = string(p)
				}
			}
			elems = append(elems, m, []byte(score))
		}
	case 11: // intset
		s, err := r.str()
		if err != nil {
			return "", "", err
		}
		if elems, err = intset(s); err != nil {
			return "", "", err
		}
	case 10, 12, 13: // ziplist: list, zset, hash
		s, err := r.str()
		if err != nil {
			return "", "", err
		}
		if elems, err = ziplist(s); err != nil {
			return "", "", err
		}
	case 16, 17, 20: // listpack: hash, zset, set
		s, err := r.str()
		if err != nil {
			return "", "", err
		}
		if elems, err = listpack(s); err != nil {
			return "", "", err
		}
	case 14, 18: // quicklist of ziplists, or of listpacks / plain nodes
		n, _, err := r.length()
		if err != nil {
			return "", "", err
		}
		for i := uint64(0); i < n; i++ {
			container := uint64(2)
			if typ == 18 {
				if container, _, err = r.length(); err != nil {
					return "", "", err
				}
			}
			s, err := r.str()
			if err != nil {
				return "", "", err
			}
			var part [][]byte
			switch {
			case typ == 14:
				part, err = ziplist(s)
			case container == 1:
				part = [][]byte{s}
			default:
				part, err = listpack(s)
			}
			if err != nil {
				return "", "", err
			}
			elems = append(elems, part...)
		}
	default:
		return "", "", fmt.Errorf("%w: value type %d cannot be shown", errRDB, typ)
	}
	quoted := make([]string, len(elems))
	for i, e := range elems {
		quoted[i] = QuoteRDB(e)
	}
	switch typ {
	case 1, 10, 14, 18:
		return "list", "[" + strings.Join(quoted, ", ") + "]", nil
	case 2, 11, 20:
		slices.Sort(quoted)
		return "set", "{" + strings.Join(quoted, ", ") + "}", nil
	}
	if len(elems)%2 != 0 {
		return "", "", fmt.Errorf("%w: odd number of elements in a hash or sorted set", errRDB)
	}
	pairs := make([]string, 0, len(elems)/2)
	zset := typ == 3 || typ == 5 || typ == 12 || typ == 17
	for i := 0; i < len(elems); i += 2 {
		if zset {
			pairs = append(pairs, quoted[i]+": "+string(elems[i+1]))
		} else {
			pairs = append(pairs, quoted[i]+": "+quoted[i+1])
		}
	}
	slices.Sort(pairs)
	if zset {
		return "zset", "{" + strings.Join(pairs, ", ") + "}", nil
	}
	return "hash", "{" + strings.Join(pairs, ", ") + "}", nil
}

// QuoteRDB quotes a Redis string as a SQL literal, E'...' with escapes
// when it holds control characters, backslashes or invalid UTF-8.
func QuoteRDB(s []byte) string {
	plain := true
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return "'" + strings.ReplaceAll(string(s), "'", "''") + "'"
	}
	var b strings.Builder
	b.WriteString("E'")
	for _, c := range s {
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\'':
			b.WriteString(`\'`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func intset(s []byte) ([][]byte, error) {
	if len(s) < 8 {
		return nil, fmt.Errorf("%w: short intset", errRDB)
	}
	enc, n := binary.LittleEndian.Uint32(s), binary.LittleEndian.Uint32(s[4:])
	if enc != 2 && enc != 4 && enc != 8 || uint64(len(s)-8) != uint64(enc)*uint64(n) {
		return nil, fmt.Errorf("%w: intset encoding %d with %d members in %d bytes", errRDB, enc, n, len(s))
	}
	out := make([][]byte, n)
	for i := range out {
		p := s[8+i*int(enc):]
		var v int64
		switch enc {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(p)))
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(p)))
		default:
			v = int64(binary.LittleEndian.Uint64(p))
		}
		out[i] = strconv.AppendInt(nil, v, 10)
	}
	return out, nil
}

// need fails unless p has n more bytes at i.
func need(p []byte, i, n int) error {
	if n < 0 || i+n > len(p) || i+n < i {
		return fmt.Errorf("%w: packed value overruns", errRDB)
	}
	return nil
}

func ziplist(s []byte) ([][]byte, error) {
	if len(s) < 11 {
		return nil, fmt.Errorf("%w: short ziplist", errRDB)
	}
	var out [][]byte
	i := 10
	for {
		if err := need(s, i, 1); err != nil {
			return nil, err
		}
		if s[i] == 0xff {
			return out, nil
		}
		if s[i] == 0xfe { // prevlen
			i += 5
		} else {
			i++
		}
		if err := need(s, i, 1); err != nil {
			return nil, err
		}
		b := s[i]
		var n int
		switch {
		case b>>6 == 0:
			n, i = int(b&0x3f), i+1
		case b>>6 == 1:
			if err := need(s, i, 2); err != nil {
				return nil, err
			}
			n, i = int(b&0x3f)<<8|int(s[i+1]), i+2
		case b == 0x80:
			if err := need(s, i, 5); err != nil {
				return nil, err
			}
			n, i = int(binary.BigEndian.Uint32(s[i+1:])), i+5
		default:
			var v int64
			var w int
			switch b {
			case 0xc0:
				w = 2
			case 0xd0:
				w = 4
			case 0xe0:
				w = 8
			case 0xf0:
				w = 3
			case 0xfe:
				w = 1
			default:
				if b >= 0xf1 && b <= 0xfd {
					out = append(out, strconv.AppendInt(nil, int64(b&0x0f)-1, 10))
					i++
					continue
				}
				return nil, fmt.Errorf("%w: ziplist encoding %#x", errRDB, b)
			}
			if err := need(s, i+1, w); err != nil {
				return nil, err
			}
			p := s[i+1 : i+1+w]
			switch w {
			case 1:
				v = int64(int8(p[0]))
			case 2:
				v = int64(int16(binary.LittleEndian.Uint16(p)))
			case 3:
				v = int64(int32(uint32(p[0])<<8|uint32(p[1])<<16|uint32(p[2])<<24) >> 8)
			case 4:
				v = int64(int32(binary.LittleEndian.Uint32(p)))
			case 8:
				v = int64(binary.LittleEndian.Uint64(p))
			}
			out = append(out, strconv.AppendInt(nil, v, 10))
			i += 1 + w
			continue
		}
		if err := need(s, i, n); err != nil {
			return nil, err
		}
		out = append(out, s[i:i+n])
		i += n
	}
}

func listpack(s []byte) ([][]byte, error) {
	if len(s) < 7 {
		return nil, fmt.Errorf("%w: short listpack", errRDB)
	}
	var out [][]byte
	i := 6
	for {
		if err := need(s, i, 1); err != nil {
			return nil, err
		}
		b := s[i]
		if b == 0xff {
			return out, nil
		}
		start := i
		var elem []byte
		intOf := func(w int) (int64, error) {
			if err := need(s, i+1, w); err != nil {
				return 0, err
			}
			var u uint64
			for k := w - 1; k >= 0; k-- {
				u = u<<8 | uint64(s[i+1+k])
			}
			shift := 64 - 8*w
			i += 1 + w
			return int64(u<<shift) >> shift, nil
		}
		str := func(hdr, n int) error {
			if err := need(s, i+hdr, n); err != nil {
				return err
			}
			elem = s[i+hdr : i+hdr+n]
			i += hdr + n
			return nil
		}
		var err error
		switch {
		case b>>7 == 0:
			elem, i = strconv.AppendInt(nil, int64(b), 10), i+1
		case b>>6 == 2:
			err = str(1, int(b&0x3f))
		case b>>5 == 6:
			if err = need(s, i, 2); err == nil {
				v := int64(b&0x1f)<<8 | int64(s[i+1])
				if v >= 1<<12 {
					v -= 1 << 13
				}
				elem, i = strconv.AppendInt(nil, v, 10), i+2
			}
		case b>>4 == 14:
			if err = need(s, i, 2); err == nil {
				err = str(2, int(b&0x0f)<<8|int(s[i+1]))
			}
		case b == 0xf0:
			if err = need(s, i, 5); err == nil {
				err = str(5, int(binary.LittleEndian.Uint32(s[i+1:])))
			}
		case b >= 0xf1 && b <= 0xf4:
			var v int64
			v, err = intOf([]int{2, 3, 4, 8}[b-0xf1])
			elem = strconv.AppendInt(nil, v, 10)
		default:
			return nil, fmt.Errorf("%w: listpack encoding %#x", errRDB, b)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, elem)
		// The back length: the entry's size, 7 bits a byte.
		l := i - start
		switch {
		case l < 128:
			i++
		case l < 16384:
			i += 2
		case l < 2097152:
			i += 3
		case l < 268435456:
			i += 4
		default:
			i += 5
		}
	}
}
