package rowdiff

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// redisDump reads the redis source's normalised RDB: keys sorted by
// database and key, each database a table ("db0", ...) of rows key,
// type, value (decoded: the same contents give the same row whatever
// the encoding) and expiry (absolute, in unix milliseconds). The RDB is
// read by source.ScanRDB in a goroutine that hands over one key at a
// time.
type redisDump struct {
	s     *schema
	ch    chan source.RDBEntry
	stop  chan struct{}
	errc  chan error
	err   error
	table string
	ahead *source.RDBEntry
	done  bool
	row   []byte
}

var redisColumns = []string{"key", "type", "value", "expires"}

func newRedis(r io.Reader) *redisDump {
	d := &redisDump{s: newSchema(), ch: make(chan source.RDBEntry, 64), stop: make(chan struct{}), errc: make(chan error, 1)}
	go func() {
		defer close(d.ch)
		d.errc <- source.ScanRDB(r, func(e source.RDBEntry) error {
			select {
			case d.ch <- e:
				return nil
			case <-d.stop:
				return errStopped
			}
		}, func(code []byte) error {
			d.s.objects[objKey{"function", "", libraryName(code)}] = string(code)
			return nil
		})
	}()
	return d
}

var errStopped = fmt.Errorf("stopped")

// close stops the reading goroutine (for a diff that ends early).
func (d *redisDump) close() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	for range d.ch {
	}
}

var libRE = regexp.MustCompile(`^#!\S+\s+name=(\S+)`)

func libraryName(code []byte) string {
	if m := libRE.FindSubmatch(code); m != nil {
		return string(m[1])
	}
	return fmt.Sprintf("library of %d bytes", len(code))
}

func (d *redisDump) schema() *schema { return d.s }

func (d *redisDump) read() (*source.RDBEntry, error) {
	if d.ahead != nil {
		e := d.ahead
		d.ahead = nil
		return e, nil
	}
	e, ok := <-d.ch
	if !ok {
		if err := <-d.errc; err != nil {
			d.errc <- err
			return nil, fmt.Errorf("%w: redis dump: %v", dotmesh.ErrCorrupt, err)
		}
		d.errc <- nil
		return nil, io.EOF
	}
	return &e, nil
}

func dbName(db uint64) string { return "db" + strconv.FormatUint(db, 10) }

func (d *redisDump) nextTable() (string, error) {
	if err := drain(d.nextRow); err != nil {
		return "", err
	}
	e, err := d.read()
	if err != nil {
		return "", err
	}
	d.ahead = e
	d.table = dbName(e.DB)
	t := d.s.tableOf(d.table)
	t.cols, t.key = redisColumns, redisColumns[:1]
	return d.table, nil
}

func (d *redisDump) nextRow() ([]byte, error) {
	if d.table == "" {
		return nil, io.EOF
	}
	e, err := d.read()
	if err != nil {
		if err == io.EOF {
			d.table = ""
		}
		return nil, err
	}
	if dbName(e.DB) != d.table {
		d.ahead, d.table = e, ""
		return nil, io.EOF
	}
	typ, elems, err := source.RDBValue(e.Type, e.Value)
	if err != nil {
		return nil, fmt.Errorf("%w: redis %s key %s: %v", dotmesh.ErrCorrupt, d.table, quoteLiteral(string(e.Key)), err)
	}
	contents := redisContents(typ, elems)
	exp := "NULL"
	if e.Expire != 0 {
		exp = strconv.FormatInt(e.Expire, 10)
	}
	// The key escaped so that rows sort as keys do: 0 as 0 1, then 0 0.
	d.row = d.row[:0]
	for _, c := range e.Key {
		d.row = append(d.row, c)
		if c == 0 {
			d.row = append(d.row, 1)
		}
	}
	d.row = append(d.row, 0, 0)
	d.row = append(d.row, strings.Join([]string{quoteLiteral(string(e.Key)), typ, contents, exp}, "\x00")...)
	return d.row, nil
}

// redisContents renders a value canonically, the same whatever encoding
// Redis chose: a string quoted, a list in order, set members sorted,
// hash fields sorted, sorted set members with their scores, sorted.
func redisContents(kind string, elems [][]byte) string {
	q := make([]string, len(elems))
	for i, e := range elems {
		q[i] = quoteLiteral(string(e))
	}
	switch kind {
	case source.RedisString:
		return q[0]
	case source.RedisList:
		return "[" + strings.Join(q, ", ") + "]"
	case source.RedisSet:
		slices.Sort(q)
		return "{" + strings.Join(q, ", ") + "}"
	}
	pairs := make([]string, 0, len(q)/2)
	for i := 0; i+1 < len(q); i += 2 {
		v := q[i+1]
		if kind == source.RedisZSet {
			v = string(elems[i+1]) // a score
		}
		pairs = append(pairs, q[i]+": "+v)
	}
	slices.Sort(pairs)
	return "{" + strings.Join(pairs, ", ") + "}"
}

func (d *redisDump) values(table string, row []byte) ([]string, error) {
	i := bytes.Index(row, []byte{0, 0})
	if i < 0 {
		return nil, fmt.Errorf("%w: redis %s: malformed row", dotmesh.ErrCorrupt, table)
	}
	v := strings.Split(string(row[i+2:]), "\x00")
	if len(v) != len(redisColumns) {
		return nil, fmt.Errorf("%w: redis %s: malformed row", dotmesh.ErrCorrupt, table)
	}
	return v, nil
}
