package source

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"sort"
	"strconv"
)

// RDB handling for redis sources: enough of the format to cut a file into
// its entries, so that a dump can be made deterministic (volatile header
// fields dropped, entries sorted by database and key, checksum disabled)
// and restored key by key with RESTORE (Redis cannot load an RDB into a
// running server). Streams and module types are not supported.

type rdbEntry struct {
	db     uint64
	expire int64 // absolute unix ms; 0 = none
	typ    byte
	key    []byte
	value  []byte // the value's encoding, verbatim
}

type rdbFile struct {
	version   string // 4 digits
	aux       [][2][]byte
	functions [][]byte
	entries   []rdbEntry
}

var errRDB = errors.New("malformed RDB")

type rdbReader struct {
	r   *bufio.Reader
	rec *bytes.Buffer // when set, raw bytes read are copied here
	max uint64        // when set, the most any one read can get (what is left is less)
}

func (r *rdbReader) byte() (byte, error) {
	b, err := r.r.ReadByte()
	if err == nil && r.rec != nil {
		r.rec.WriteByte(b)
	}
	return b, err
}

func (r *rdbReader) full(n uint64) ([]byte, error) {
	if n > 512<<20 || r.max != 0 && n > r.max {
		return nil, fmt.Errorf("%w: length %d", errRDB, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r.r, b); err != nil {
		return nil, err
	}
	if r.rec != nil {
		r.rec.Write(b)
	}
	return b, nil
}

// length reads a length; special reports an encoded-string marker.
func (r *rdbReader) length() (n uint64, special bool, err error) {
	b, err := r.byte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		c, err := r.byte()
		return uint64(b&0x3f)<<8 | uint64(c), false, err
	case 2:
		switch b {
		case 0x80:
			p, err := r.full(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(p)), false, nil
		case 0x81:
			p, err := r.full(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(p), false, nil
		}
		return 0, false, fmt.Errorf("%w: length byte %#x", errRDB, b)
	}
	return uint64(b & 0x3f), true, nil
}

// str reads a string and returns its decoded value.
func (r *rdbReader) str() ([]byte, error) {
	n, special, err := r.length()
	if err != nil {
		return nil, err
	}
	if !special {
		return r.full(n)
	}
	switch n {
	case 0, 1, 2:
		p, err := r.full(1 << n)
		if err != nil {
			return nil, err
		}
		return []byte(strconv.FormatInt(leInt(p), 10)), nil
	case 3:
		clen, _, err := r.length()
		if err != nil {
			return nil, err
		}
		ulen, _, err := r.length()
		if err != nil {
			return nil, err
		}
		c, err := r.full(clen)
		if err != nil {
			return nil, err
		}
		return lzfDecompress(c, ulen)
	}
	return nil, fmt.Errorf("%w: string encoding %d", errRDB, n)
}

// skipValue reads (and, with rec set, records) one value of type t.
func (r *rdbReader) skipValue(t byte) error {
	strs := func(per int) error {
		n, _, err := r.length()
		if err != nil {
			return err
		}
		for i := uint64(0); i < n*uint64(per); i++ {
			if _, err := r.str(); err != nil {
				return err
			}
		}
		return nil
	}
	switch t {
	case 0, 9, 10, 11, 12, 13, 16, 17, 20: // plain string, or one packed blob
		_, err := r.str()
		return err
	case 1, 2, 14:
		return strs(1)
	case 4:
		return strs(2)
	case 3, 5: // zset: member + score
		n, _, err := r.length()
		if err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			if _, err := r.str(); err != nil {
				return err
			}
			if t == 5 {
				_, err = r.full(8)
			} else {
				var l byte
				if l, err = r.byte(); err == nil && l < 253 {
					_, err = r.full(uint64(l))
				}
			}
			if err != nil {
				return err
			}
		}
		return nil
	case 18: // quicklist 2: container kind + blob
		n, _, err := r.length()
		if err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			if _, _, err := r.length(); err != nil {
				return err
			}
			if _, err := r.str(); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%w: redis value type %d (streams and module types) is not supported by dotmesh's redis source", errRDB, t)
}

// parseRDB reads a whole RDB file; a file without its EOF marker is
// truncated.
func parseRDB(in io.Reader) (*rdbFile, error) {
	f := &rdbFile{}
	var err error
	f.version, err = scanRDB(in, rdbHandler{
		aux:      func(k, v []byte) { f.aux = append(f.aux, [2][]byte{k, v}) },
		function: func(code []byte) error { f.functions = append(f.functions, code); return nil },
		entry:    func(e rdbEntry) error { f.entries = append(f.entries, e); return nil },
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// rdbHandler receives what scanRDB reads, in file order.
type rdbHandler struct {
	aux      func(k, v []byte)
	function func(code []byte) error
	entry    func(e rdbEntry) error
}

// RDBEntry is one key of an RDB file.
type RDBEntry struct {
	DB     uint64
	Expire int64 // absolute unix ms; 0 = none
	Type   byte
	Key    []byte
	Value  []byte // the value's encoding, verbatim (see RDBValue)
}

// ScanRDB reads an RDB file as a stream (as the redis source writes it:
// keys sorted by database and key), calling function for every function
// library and entry for every key; a file without its EOF marker is
// truncated. The entry's slices are its own.
func ScanRDB(in io.Reader, entry func(RDBEntry) error, function func(code []byte) error) error {
	_, err := scanRDB(in, rdbHandler{
		aux:      func(k, v []byte) {},
		function: function,
		entry: func(e rdbEntry) error {
			return entry(RDBEntry{DB: e.db, Expire: e.expire, Type: e.typ, Key: e.key, Value: e.value})
		},
	})
	return err
}

// scanRDB reads an RDB file, handing its parts to h, and returns its
// version.
func scanRDB(in io.Reader, h rdbHandler) (string, error) {
	r := &rdbReader{r: bufio.NewReaderSize(in, 1<<20)}
	head, err := r.full(9)
	if err != nil || string(head[:5]) != "REDIS" {
		return "", fmt.Errorf("%w: not an RDB file", errRDB)
	}
	version := string(head[5:])
	var db uint64
	var expire int64
	for {
		op, err := r.byte()
		if err != nil {
			return "", fmt.Errorf("%w: no end marker (truncated): %v", errRDB, err)
		}
		switch op {
		case 0xff:
			return version, nil
		case 0xfa:
			k, err := r.str()
			if err != nil {
				return "", err
			}
			v, err := r.str()
			if err != nil {
				return "", err
			}
			h.aux(k, v)
		case 0xfb:
			if _, _, err := r.length(); err != nil {
				return "", err
			}
			if _, _, err := r.length(); err != nil {
				return "", err
			}
		case 0xfe:
			if db, _, err = r.length(); err != nil {
				return "", err
			}
		case 0xfc:
			p, err := r.full(8)
			if err != nil {
				return "", err
			}
			expire = int64(binary.LittleEndian.Uint64(p))
		case 0xfd:
			p, err := r.full(4)
			if err != nil {
				return "", err
			}
			expire = int64(binary.LittleEndian.Uint32(p)) * 1000
		case 0xf8: // LRU idle time: volatile
			if _, _, err := r.length(); err != nil {
				return "", err
			}
		case 0xf7: // LFU counter: volatile
			if _, err := r.byte(); err != nil {
				return "", err
			}
		case 0xf5:
			code, err := r.str()
			if err != nil {
				return "", err
			}
			if err := h.function(code); err != nil {
				return "", err
			}
		case 0xf6, 0xf9:
			return "", fmt.Errorf("%w: opcode %#x (old functions, module data) is not supported", errRDB, op)
		default:
			key, err := r.str()
			if err != nil {
				return "", err
			}
			var val bytes.Buffer
			r.rec = &val
			err = r.skipValue(op)
			r.rec = nil
			if err != nil {
				return "", fmt.Errorf("key %q: %w", key, err)
			}
			if err := h.entry(rdbEntry{db: db, expire: expire, typ: op, key: key, value: val.Bytes()}); err != nil {
				return "", err
			}
			expire = 0
		}
	}
}

// stableAux are the header fields that describe the data, not the moment.
var stableAux = map[string]bool{"redis-ver": true, "redis-bits": true}

func writeString(w *bytes.Buffer, s []byte) {
	n := uint64(len(s))
	switch {
	case n < 1<<6:
		w.WriteByte(byte(n))
	case n < 1<<14:
		w.WriteByte(byte(n>>8) | 0x40)
		w.WriteByte(byte(n))
	case n <= 0xffffffff:
		w.WriteByte(0x80)
		binary.Write(w, binary.BigEndian, uint32(n))
	default:
		w.WriteByte(0x81)
		binary.Write(w, binary.BigEndian, n)
	}
	w.Write(s)
}

func writeLength(w *bytes.Buffer, n uint64) {
	switch {
	case n < 1<<6:
		w.WriteByte(byte(n))
	case n < 1<<14:
		w.WriteByte(byte(n>>8) | 0x40)
		w.WriteByte(byte(n))
	default:
		w.WriteByte(0x80)
		binary.Write(w, binary.BigEndian, uint32(n))
	}
}

// writeNormalized writes f as a valid RDB with stable bytes: stable aux
// fields only, entries sorted, no LRU/LFU data, checksum 0 (which Redis
// reads as "not computed").
func (f *rdbFile) writeNormalized(out io.Writer) error {
	sort.SliceStable(f.entries, func(i, j int) bool {
		a, b := f.entries[i], f.entries[j]
		if a.db != b.db {
			return a.db < b.db
		}
		return bytes.Compare(a.key, b.key) < 0
	})
	sort.Slice(f.functions, func(i, j int) bool { return bytes.Compare(f.functions[i], f.functions[j]) < 0 })
	var w bytes.Buffer
	w.WriteString("REDIS" + f.version)
	for _, a := range f.aux {
		if stableAux[string(a[0])] {
			w.WriteByte(0xfa)
			writeString(&w, a[0])
			writeString(&w, a[1])
		}
	}
	for _, fn := range f.functions {
		w.WriteByte(0xf5)
		writeString(&w, fn)
	}
	db := ^uint64(0)
	for _, e := range f.entries {
		if e.db != db {
			db = e.db
			w.WriteByte(0xfe)
			writeLength(&w, db)
		}
		if e.expire != 0 {
			w.WriteByte(0xfc)
			binary.Write(&w, binary.LittleEndian, e.expire)
		}
		w.WriteByte(e.typ)
		writeString(&w, e.key)
		w.Write(e.value)
		if w.Len() > 1<<20 {
			if _, err := out.Write(w.Bytes()); err != nil {
				return err
			}
			w.Reset()
		}
	}
	w.WriteByte(0xff)
	w.Write(make([]byte, 8))
	_, err := out.Write(w.Bytes())
	return err
}

// crcTable is Redis's CRC-64 (Jones polynomial, reflected, init 0).
var crcTable = crc64.MakeTable(0x95ac9329ac4bc9b5)

func redisCRC64(p []byte) uint64 { return ^crc64.Update(^uint64(0), crcTable, p) }

// restorePayload is what DUMP returns for an entry and RESTORE takes.
func (f *rdbFile) restorePayload(e *rdbEntry) ([]byte, error) {
	ver, err := strconv.Atoi(f.version)
	if err != nil {
		return nil, fmt.Errorf("%w: version %q", errRDB, f.version)
	}
	p := make([]byte, 0, len(e.value)+11)
	p = append(p, e.typ)
	p = append(p, e.value...)
	p = binary.LittleEndian.AppendUint16(p, uint16(ver))
	return binary.LittleEndian.AppendUint64(p, redisCRC64(p)), nil
}

// lzfDecompress expands LZF data (as Redis writes it) to exactly n bytes.
func lzfDecompress(in []byte, n uint64) ([]byte, error) {
	if n > 512<<20 {
		return nil, fmt.Errorf("%w: LZF length %d", errRDB, n)
	}
	out := make([]byte, 0, n)
	for i := 0; i < len(in); {
		ctrl := int(in[i])
		i++
		if ctrl < 32 {
			l := ctrl + 1
			if i+l > len(in) {
				return nil, fmt.Errorf("%w: LZF literal overruns", errRDB)
			}
			if uint64(len(out)+l) > n {
				return nil, fmt.Errorf("%w: LZF output overruns", errRDB)
			}
			out = append(out, in[i:i+l]...)
			i += l
			continue
		}
		l := ctrl >> 5
		if l == 7 {
			if i >= len(in) {
				return nil, fmt.Errorf("%w: LZF truncated", errRDB)
			}
			l += int(in[i])
			i++
		}
		if i >= len(in) {
			return nil, fmt.Errorf("%w: LZF truncated", errRDB)
		}
		ref := len(out) - ((ctrl & 0x1f) << 8) - int(in[i]) - 1
		i++
		if ref < 0 {
			return nil, fmt.Errorf("%w: LZF back reference", errRDB)
		}
		if uint64(len(out)+l+2) > n {
			return nil, fmt.Errorf("%w: LZF output overruns", errRDB)
		}
		for k := 0; k < l+2; k++ {
			out = append(out, out[ref+k])
		}
	}
	if uint64(len(out)) != n {
		return nil, fmt.Errorf("%w: LZF gave %d bytes, want %d", errRDB, len(out), n)
	}
	return out, nil
}
