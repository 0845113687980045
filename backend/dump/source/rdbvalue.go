package source

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// Kinds of Redis values, as RDBValue names them.
const (
	RedisString = "string"
	RedisList   = "list"
	RedisSet    = "set"
	RedisHash   = "hash"
	RedisZSet   = "zset"
)

// RDBValue decodes a value's RDB encoding (RDBEntry.Value of type typ),
// whatever encoding Redis chose, into its kind and elements: a string's
// one element, a list's in order, a set's members, a hash's fields and
// values alternating, a sorted set's members and scores (as text)
// alternating; sets, hashes and sorted sets in the order of the encoding.
func RDBValue(typ byte, value []byte) (kind string, elems [][]byte, err error) {
	r := &rdbReader{r: bufio.NewReader(bytes.NewReader(value)), max: uint64(len(value)) + 1}
	switch typ {
	case 0:
		s, err := r.str()
		if err != nil {
			return "", nil, err
		}
		return RedisString, [][]byte{s}, nil
	case 1, 2, 4: // list, set, hash of strings
		n, _, err := r.length()
		if err != nil {
			return "", nil, err
		}
		if typ == 4 {
			n *= 2
		}
		for i := uint64(0); i < n; i++ {
			s, err := r.str()
			if err != nil {
				return "", nil, err
			}
			elems = append(elems, s)
		}
	case 3, 5: // zset: member, score
		n, _, err := r.length()
		if err != nil {
			return "", nil, err
		}
		for i := uint64(0); i < n; i++ {
			m, err := r.str()
			if err != nil {
				return "", nil, err
			}
			var score string
			if typ == 5 {
				p, err := r.full(8)
				if err != nil {
					return "", nil, err
				}
				score = strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(p)), 'g', -1, 64)
			} else {
				l, err := r.byte()
				if err != nil {
					return "", nil, err
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
						return "", nil, err
					}
					score = string(p)
				}
			}
			elems = append(elems, m, []byte(score))
		}
	case 11: // intset
		s, err := r.str()
		if err != nil {
			return "", nil, err
		}
		if elems, err = intset(s); err != nil {
			return "", nil, err
		}
	case 10, 12, 13: // ziplist: list, zset, hash
		s, err := r.str()
		if err != nil {
			return "", nil, err
		}
		if elems, err = ziplist(s); err != nil {
			return "", nil, err
		}
	case 16, 17, 20: // listpack: hash, zset, set
		s, err := r.str()
		if err != nil {
			return "", nil, err
		}
		if elems, err = listpack(s); err != nil {
			return "", nil, err
		}
	case 14, 18: // quicklist of ziplists, or of listpacks / plain nodes
		n, _, err := r.length()
		if err != nil {
			return "", nil, err
		}
		for i := uint64(0); i < n; i++ {
			container := uint64(2)
			if typ == 18 {
				if container, _, err = r.length(); err != nil {
					return "", nil, err
				}
			}
			s, err := r.str()
			if err != nil {
				return "", nil, err
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
				return "", nil, err
			}
			elems = append(elems, part...)
		}
	default:
		return "", nil, fmt.Errorf("%w: value type %d cannot be shown", errRDB, typ)
	}
	switch typ {
	case 1, 10, 14, 18:
		return RedisList, elems, nil
	case 2, 11, 20:
		return RedisSet, elems, nil
	}
	if len(elems)%2 != 0 {
		return "", nil, fmt.Errorf("%w: odd number of elements in a hash or sorted set", errRDB)
	}
	if typ == 3 || typ == 5 || typ == 12 || typ == 17 {
		return RedisZSet, elems, nil
	}
	return RedisHash, elems, nil
}

// leInt reads a little-endian two's complement integer of len(p) bytes.
func leInt(p []byte) int64 {
	var u uint64
	for k := len(p) - 1; k >= 0; k-- {
		u = u<<8 | uint64(p[k])
	}
	shift := 64 - 8*len(p)
	return int64(u<<shift) >> shift
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
		out[i] = strconv.AppendInt(nil, leInt(s[8+i*int(enc):8+(i+1)*int(enc)]), 10)
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
			out = append(out, strconv.AppendInt(nil, leInt(s[i+1:i+1+w]), 10))
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
			v := leInt(s[i+1 : i+1+w])
			i += 1 + w
			return v, nil
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
