// Package rowdiff compares two dumps of one database, as the dump
// sources write them (PostgreSQL plain pg_dump normalised with sorted
// COPY rows, mysqldump with one INSERT per row, SQLite .dump, Redis's
// normalised RDB), into schema changes and per-table row changes.
//
// Dumps are read as streams, both at once, table by table. Rows are first
// compared as multisets: merged when both sides are sorted in the same
// order (PostgreSQL's sorted COPY lines, Redis's keys; MariaDB/MySQL
// tables with integer keys, dumped in key order, and SQLite tables keyed
// by their rowid are merged by key), otherwise through a hash of the old
// side's rows, whose memory is bounded by MaxHashRows. What differs, the deleted and the inserted
// rows, is then paired by primary key into updates (tables without one
// keep a count of deleted and inserted rows). Rows that must wait (a
// table met out of order, the changed rows) stay in memory up to a
// budget and then spill to a temporary directory.
package rowdiff

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Options tunes Diff.
type Options struct {
	// MaxRows is the rows listed per table; 0 lists none (counts only).
	MaxRows int
	// TempDir receives spilled rows ("" for the system's).
	TempDir string
	// MemoryBudget bounds the rows held in memory; 0 means 64 MiB.
	MemoryBudget int64
}

// MaxHashRows bounds the distinct rows of one table that an unsorted
// comparison (MariaDB/MySQL, SQLite) holds a hash of (16 bytes each,
// plus the map's overhead): a bigger table fails with a message saying
// so rather than exhausting memory. A variable for tests.
var MaxHashRows = 32 << 20

// MaxChangedRows bounds the changed rows of one table paired by key (8
// bytes each).
var MaxChangedRows = 256 << 20

// Kinds of database Diff reads.
const (
	PostgreSQL = "postgresql"
	MySQL      = "mysql"
	SQLite     = "sqlite"
	Redis      = "redis"
)

// dump is one side being read: a stream of tables, each a stream of rows.
type dump interface {
	// nextTable skips what is left of the current table's rows and
	// returns the next table with rows; io.EOF after the last.
	nextTable() (string, error)
	// nextRow returns the current table's next row (valid until the
	// next call); io.EOF after its last.
	nextRow() ([]byte, error)
	// schema is complete once nextTable returned io.EOF.
	schema() *schema
	// values splits a row of table into its columns' literals.
	values(table string, row []byte) ([]string, error)
}

// open returns the parser of kind for r; nil r is an absent database.
func open(kind string, r io.Reader) (dump, error) {
	if r == nil && kinds[kind] {
		return emptyDump{}, nil
	}
	switch kind {
	case PostgreSQL:
		return newPostgres(r), nil
	case MySQL:
		return newMySQL(r), nil
	case SQLite:
		return newSQLite(r), nil
	case Redis:
		return newRedis(r), nil
	}
	return nil, fmt.Errorf("%w: no row comparison for %q databases", dotmesh.ErrNotSupported, kind)
}

var kinds = map[string]bool{PostgreSQL: true, MySQL: true, SQLite: true, Redis: true}

type emptyDump struct{}

func (emptyDump) nextTable() (string, error)              { return "", io.EOF }
func (emptyDump) nextRow() ([]byte, error)                { return nil, io.EOF }
func (emptyDump) schema() *schema                         { return newSchema() }
func (emptyDump) values(string, []byte) ([]string, error) { return nil, nil }

// orders is how each kind's dump sorts the rows of a table, when it
// does: then the two sides are merged.
var orders = map[string]func(a, b []byte) int{
	PostgreSQL: source.CompareRows,
	Redis:      bytes.Compare,
}

// Diff compares the dumps old and new of a kind database (nil for an
// absent one) and returns its schema changes and its tables' row changes.
// A malformed or truncated dump fails, naming the table or line.
func Diff(kind string, old, new io.Reader, opts Options) (*dotmesh.DatabaseDiff, error) {
	a, err := open(kind, old)
	if err != nil {
		return nil, err
	}
	b, err := open(kind, new)
	if err != nil {
		return nil, err
	}
	for _, x := range []dump{a, b} {
		if c, ok := x.(interface{ close() }); ok {
			defer c.close()
		}
	}
	if opts.MemoryBudget <= 0 {
		opts.MemoryBudget = 64 << 20
	}
	d := &differ{a: a, b: b, opts: opts, cmp: orders[kind], bud: &budget{left: opts.MemoryBudget, dir: opts.TempDir},
		tables: map[string]*tableChanges{}, pendA: map[string]*spool{}, pendB: map[string]*spool{}}
	defer d.bud.close()
	if err := d.run(); err != nil {
		return nil, err
	}
	out := &dotmesh.DatabaseDiff{Kind: kind}
	out.Schema = diffSchema(a.schema(), b.schema())
	names := make([]string, 0, len(d.tables))
	for n := range d.tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		td, err := d.finish(d.tables[n])
		if err != nil {
			return nil, err
		}
		if td != nil {
			out.Tables = append(out.Tables, *td)
		}
	}
	out.Changed = len(out.Schema) > 0 || len(out.Tables) > 0
	return out, nil
}

type differ struct {
	a, b   dump
	cmp    func(a, b []byte) int // nil: unsorted
	opts   Options
	bud    *budget
	tables map[string]*tableChanges
	// Tables met on one side before the other: their rows, in order.
	pendA, pendB map[string]*spool
}

// tableChanges is the rows of one table found on one side only.
type tableChanges struct {
	name     string
	del, ins *spool
}

// rowSource is a stream of one table's rows: a dump's current table or
// a spooled one.
type rowSource interface{ nextRow() ([]byte, error) }

type noRows struct{}

func (noRows) nextRow() ([]byte, error) { return nil, io.EOF }

// run reads both dumps to their ends, table by table.
func (d *differ) run() error {
	seenA, seenB := map[string]bool{}, map[string]bool{}
	nextA := func() (string, error) { return nextTable(d.a, seenA, "old") }
	nextB := func() (string, error) { return nextTable(d.b, seenB, "new") }
	ta, erra := nextA()
	tb, errb := nextB()
	for {
		if erra != nil && erra != io.EOF {
			return erra
		}
		if errb != nil && errb != io.EOF {
			return errb
		}
		if erra == io.EOF && errb == io.EOF {
			break
		}
		switch {
		case erra == nil && errb == nil && ta == tb:
			if err := d.compareRows(ta, d.a, d.b); err != nil {
				return err
			}
			ta, erra = nextA()
			tb, errb = nextB()
		case erra == nil && d.pendB[ta] != nil:
			if err := d.compareSpooled(ta, d.a, d.pendB, false); err != nil {
				return err
			}
			ta, erra = nextA()
		case errb == nil && d.pendA[tb] != nil:
			if err := d.compareSpooled(tb, d.b, d.pendA, true); err != nil {
				return err
			}
			tb, errb = nextB()
		case erra == nil && (errb != nil || ta < tb):
			if err := d.hold(d.a, d.pendA, ta); err != nil {
				return err
			}
			ta, erra = nextA()
		default:
			if err := d.hold(d.b, d.pendB, tb); err != nil {
				return err
			}
			tb, errb = nextB()
		}
	}
	// Tables of one side only: every row deleted, or inserted.
	for n, s := range d.pendA {
		sr, err := s.reader()
		if err != nil {
			return err
		}
		if err := d.compareRows(n, sr, noRows{}); err != nil {
			return err
		}
	}
	for n, s := range d.pendB {
		sr, err := s.reader()
		if err != nil {
			return err
		}
		if err := d.compareRows(n, noRows{}, sr); err != nil {
			return err
		}
	}
	return nil
}

// drain reads what is left of a table's rows (nextRow of a dump returns
// io.EOF at once when no table is open).
func drain(nextRow func() ([]byte, error)) error {
	for {
		if _, err := nextRow(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// Summary renders a diff in one line, for logs and tests: "kind object
// table.name" per schema change, then "table:+inserted-deleted~updated".
func Summary(d *dotmesh.DatabaseDiff) string {
	var out []string
	for _, s := range d.Schema {
		out = append(out, fmt.Sprintf("%s %s %s.%s", s.Kind, s.Object, s.Table, s.Name))
	}
	for _, t := range d.Tables {
		out = append(out, fmt.Sprintf("%s:+%d-%d~%d", t.Table, t.Inserted, t.Deleted, t.Updated))
	}
	return strings.Join(out, "; ")
}

// nextTable is x's next table, which must be one not seen before.
func nextTable(x dump, seen map[string]bool, side string) (string, error) {
	t, err := x.nextTable()
	if err != nil {
		return "", err
	}
	if seen[t] {
		return "", fmt.Errorf("%w: the %s dump has rows of table %s in two places", dotmesh.ErrCorrupt, side, t)
	}
	seen[t] = true
	return t, nil
}

// hold spools the current table of x until the other side has it.
func (d *differ) hold(x dump, pend map[string]*spool, t string) error {
	s := d.bud.newSpool()
	pend[t] = s
	for {
		row, err := x.nextRow()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.add(row); err != nil {
			return err
		}
	}
}

// compareSpooled compares the current table of x with its spooled rows
// from the other side; newer says x is the new side.
func (d *differ) compareSpooled(t string, x dump, pend map[string]*spool, newer bool) error {
	s := pend[t]
	delete(pend, t)
	sr, err := s.reader()
	if err != nil {
		return err
	}
	defer s.close()
	if newer {
		return d.compareRows(t, sr, x)
	}
	return d.compareRows(t, x, sr)
}

// compareRows finds the rows of table t in only one of a and b.
func (d *differ) compareRows(t string, a, b rowSource) error {
	tc := &tableChanges{name: t, del: d.bud.newSpool(), ins: d.bud.newSpool()}
	d.tables[t] = tc
	if d.cmp != nil {
		return mergeRows(t, d.cmp, a, b, tc)
	}
	if ka, kb := intKeyOf(d.a, t), intKeyOf(d.b, t); ka != nil && kb != nil && ka.n == kb.n {
		return mergeKeyed(t, ka, kb, a, b, tc)
	}
	return hashRows(t, d.bud, a, b, tc)
}

// mergeRows walks two streams sorted by cmp.
func mergeRows(t string, cmp func(a, b []byte) int, a, b rowSource, tc *tableChanges) error {
	var ra, rb, pa, pb []byte
	var ea, eb error
	nextA := func() {
		pa = append(pa[:0], ra...)
		ra, ea = a.nextRow()
		if ea == nil && len(pa) > 0 && cmp(pa, ra) > 0 {
			ea = fmt.Errorf("%w: table %s: the old dump's rows are out of order at %q", dotmesh.ErrCorrupt, t, clip(ra))
		}
	}
	nextB := func() {
		pb = append(pb[:0], rb...)
		rb, eb = b.nextRow()
		if eb == nil && len(pb) > 0 && cmp(pb, rb) > 0 {
			eb = fmt.Errorf("%w: table %s: the new dump's rows are out of order at %q", dotmesh.ErrCorrupt, t, clip(rb))
		}
	}
	ra, ea = a.nextRow()
	rb, eb = b.nextRow()
	for {
		if ea != nil && ea != io.EOF {
			return ea
		}
		if eb != nil && eb != io.EOF {
			return eb
		}
		if ea == io.EOF && eb == io.EOF {
			return nil
		}
		c := 0
		switch {
		case ea == io.EOF:
			c = 1
		case eb == io.EOF:
			c = -1
		default:
			c = cmp(ra, rb)
		}
		switch {
		case c == 0:
			nextA()
			nextB()
		case c < 0:
			if err := tc.del.add(ra); err != nil {
				return err
			}
			nextA()
		default:
			if err := tc.ins.add(rb); err != nil {
				return err
			}
			nextB()
		}
	}
}

// intKey reads the integer primary key of a table's rows: rows whose
// dump comes in key order (mysqldump --order-by-primary; SQLite's rowid
// order, when the key is the rowid) are merged by it.
type intKey struct {
	n   int
	key func(row []byte) ([]string, error)
}

// intKeyOf is table t's intKey in x, or nil when x does not dump t in
// the order of an integer key.
func intKeyOf(x dump, t string) *intKey {
	k, ok := x.(interface{ intKey(t string) *intKey })
	if !ok {
		return nil
	}
	return k.intKey(t)
}

// mergeKeyed walks two streams in the order of their integer keys: a key
// on one side only is a deleted or inserted row, a key on both with
// different rows is both (paired into an update later).
func mergeKeyed(t string, ka, kb *intKey, a, b rowSource, tc *tableChanges) error {
	type cursor struct {
		src  rowSource
		k    *intKey
		row  []byte
		key  []string
		prev []string
		err  error
		side string
	}
	next := func(c *cursor) {
		c.prev = c.key
		c.row, c.err = c.src.nextRow()
		if c.err != nil {
			return
		}
		if c.key, c.err = c.k.key(c.row); c.err == nil && c.prev != nil && compareIntKeys(c.prev, c.key) >= 0 {
			c.err = fmt.Errorf("%w: table %s: the %s dump's rows are out of key order at %q", dotmesh.ErrCorrupt, t, c.side, clip(c.row))
		}
	}
	ca, cb := &cursor{src: a, k: ka, side: "old"}, &cursor{src: b, k: kb, side: "new"}
	next(ca)
	next(cb)
	for {
		for _, c := range []*cursor{ca, cb} {
			if c.err != nil && c.err != io.EOF {
				return c.err
			}
		}
		if ca.err == io.EOF && cb.err == io.EOF {
			return nil
		}
		c := 0
		switch {
		case ca.err == io.EOF:
			c = 1
		case cb.err == io.EOF:
			c = -1
		default:
			c = compareIntKeys(ca.key, cb.key)
		}
		if c <= 0 && (c < 0 || !bytes.Equal(ca.row, cb.row)) {
			if err := tc.del.add(ca.row); err != nil {
				return err
			}
		}
		if c >= 0 && (c > 0 || !bytes.Equal(ca.row, cb.row)) {
			if err := tc.ins.add(cb.row); err != nil {
				return err
			}
		}
		if c <= 0 {
			next(ca)
		}
		if c >= 0 {
			next(cb)
		}
	}
}

// compareIntKeys orders keys of integer literals by value, whatever their
// size.
func compareIntKeys(a, b []string) int {
	for i := range a {
		if c := compareInts(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

func compareInts(a, b string) int {
	na, nb := strings.HasPrefix(a, "-"), strings.HasPrefix(b, "-")
	if na != nb {
		if na {
			return -1
		}
		return 1
	}
	a, b = strings.TrimLeft(strings.TrimPrefix(a, "-"), "0"), strings.TrimLeft(strings.TrimPrefix(b, "-"), "0")
	c := len(a) - len(b)
	if c == 0 {
		c = strings.Compare(a, b)
	}
	if na {
		return -c
	}
	return c
}

var seed = maphash.MakeSeed()

// hashRows compares unsorted streams: a's rows are counted by hash (and
// spooled, for the values of the deleted ones), then b's are checked off.
func hashRows(t string, bud *budget, a, b rowSource, tc *tableChanges) error {
	counts := map[uint64]int32{}
	old := bud.newSpool()
	defer old.close()
	for {
		row, err := a.nextRow()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		counts[maphash.Bytes(seed, row)]++
		if len(counts) > MaxHashRows {
			return fmt.Errorf("%w: table %s has more than %d distinct rows, too many to compare unsorted", dotmesh.ErrNotSupported, t, MaxHashRows)
		}
		if err := old.add(row); err != nil {
			return err
		}
	}
	for {
		row, err := b.nextRow()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		h := maphash.Bytes(seed, row)
		if counts[h] > 0 {
			counts[h]--
			continue
		}
		if err := tc.ins.add(row); err != nil {
			return err
		}
	}
	return old.each(func(row []byte) error {
		h := maphash.Bytes(seed, row)
		if counts[h] > 0 {
			counts[h]--
			return tc.del.add(row)
		}
		return nil
	})
}

// finish pairs a table's deleted and inserted rows by key and lists the
// first MaxRows changes; nil when nothing changed.
func (d *differ) finish(tc *tableChanges) (*dotmesh.TableDiff, error) {
	if tc.del.n == 0 && tc.ins.n == 0 {
		return nil, nil
	}
	oldT, newT := d.a.schema().table(tc.name), d.b.schema().table(tc.name)
	info := newT
	if info == nil {
		info = oldT
	}
	td := &dotmesh.TableDiff{Table: tc.name}
	if info != nil {
		td.Columns = info.cols
		td.Key = info.key
	}
	oldKey, newKey := keyIndex(oldT, td.Key), keyIndex(newT, td.Key)
	if len(td.Key) == 0 || (tc.del.n > 0 && oldKey == nil) || (tc.ins.n > 0 && newKey == nil) {
		td.Key, oldKey, newKey = nil, nil, nil
	}
	td.Deleted, td.Inserted = tc.del.n, tc.ins.n
	if td.Key != nil && tc.del.n > 0 && tc.ins.n > 0 {
		if tc.del.n+tc.ins.n > int64(MaxChangedRows) {
			return nil, fmt.Errorf("%w: table %s has more than %d changed rows, too many to pair by key", dotmesh.ErrNotSupported, tc.name, MaxChangedRows)
		}
		dk, err := keyHashes(d.a, tc.name, tc.del, oldKey)
		if err != nil {
			return nil, err
		}
		ik, err := keyHashes(d.b, tc.name, tc.ins, newKey)
		if err != nil {
			return nil, err
		}
		var upd int64
		for i, j := 0, 0; i < len(dk) && j < len(ik); {
			switch {
			case dk[i] == ik[j]:
				upd++
				i++
				j++
			case dk[i] < ik[j]:
				i++
			default:
				j++
			}
		}
		td.Updated, td.Deleted, td.Inserted = upd, td.Deleted-upd, td.Inserted-upd
	}
	if d.opts.MaxRows > 0 {
		if err := d.list(td, tc, oldT, newT, oldKey, newKey); err != nil {
			return nil, err
		}
	}
	return td, nil
}

func keyIndex(t *tableInfo, key []string) []int {
	if t == nil || len(key) == 0 {
		return nil
	}
	idx := make([]int, len(key))
	for i, k := range key {
		idx[i] = slices.Index(t.cols, k)
		if idx[i] < 0 {
			return nil
		}
	}
	return idx
}

func keyOf(vals []string, idx []int) ([]string, bool) {
	k := make([]string, len(idx))
	for i, j := range idx {
		if j >= len(vals) {
			return nil, false
		}
		k[i] = vals[j]
	}
	return k, true
}

func hashKey(k []string) uint64 { return maphash.String(seed, strings.Join(k, "\x00")) }

func keyHashes(x dump, t string, s *spool, idx []int) ([]uint64, error) {
	out := make([]uint64, 0, s.n)
	err := s.each(func(row []byte) error {
		vals, err := x.values(t, row)
		if err != nil {
			return err
		}
		k, ok := keyOf(vals, idx)
		if !ok {
			return fmt.Errorf("%w: table %s: row %q has fewer values than columns", dotmesh.ErrCorrupt, t, clip(row))
		}
		out = append(out, hashKey(k))
		return nil
	})
	slices.Sort(out)
	return out, err
}

// list fills td.Rows with the changes of the MaxRows smallest keys (rows,
// without a key).
func (d *differ) list(td *dotmesh.TableDiff, tc *tableChanges, oldT, newT *tableInfo, oldKey, newKey []int) error {
	limit := d.opts.MaxRows
	type change struct {
		key      []string
		old, new []string
	}
	var top []*change // sorted by key; at most limit (+1 to know of more)
	total := td.Inserted + td.Deleted + td.Updated
	consider := func(x dump, s *spool, idx []int, isOld bool) error {
		return s.each(func(row []byte) error {
			vals, err := x.values(tc.name, row)
			if err != nil {
				return err
			}
			k := vals
			if idx != nil {
				var ok bool
				if k, ok = keyOf(vals, idx); !ok {
					return fmt.Errorf("%w: table %s: row %q has fewer values than columns", dotmesh.ErrCorrupt, tc.name, clip(row))
				}
			}
			i, found := slices.BinarySearchFunc(top, k, func(c *change, k []string) int { return compareTuples(c.key, k) })
			if found && idx != nil {
				c := top[i]
				if isOld {
					c.old = vals
				} else {
					c.new = vals
				}
				return nil
			}
			if i >= limit {
				return nil
			}
			c := &change{key: k}
			if isOld {
				c.old = vals
			} else {
				c.new = vals
			}
			top = slices.Insert(top, i, c)
			if len(top) > limit {
				top = top[:limit]
			}
			return nil
		})
	}
	if err := consider(d.a, tc.del, oldKey, true); err != nil {
		return err
	}
	if err := consider(d.b, tc.ins, newKey, false); err != nil {
		return err
	}
	// A key among the first ones may have its other half beyond them
	// (rows without a key are never merged), so pairs are looked up again.
	for _, c := range top {
		rc := dotmesh.RowChange{Old: c.old, New: c.new}
		if td.Key != nil {
			rc.Key = c.key
		}
		switch {
		case c.old != nil && c.new != nil:
			rc.Kind = dotmesh.RowUpdated
			rc.Changed = changedColumns(oldT, newT, c.old, c.new)
		case c.old != nil:
			rc.Kind = dotmesh.RowDeleted
		default:
			rc.Kind = dotmesh.RowInserted
		}
		td.Rows = append(td.Rows, rc)
	}
	td.RowsTruncated = total > int64(len(td.Rows))
	return nil
}

// changedColumns names the columns whose values differ, by name (a
// column of one side only counts as changed).
func changedColumns(oldT, newT *tableInfo, old, new []string) []string {
	var out []string
	if oldT == nil || newT == nil {
		return nil
	}
	for j, c := range newT.cols {
		i := slices.Index(oldT.cols, c)
		if i < 0 || i >= len(old) || j >= len(new) || old[i] != new[j] {
			out = append(out, c)
		}
	}
	for i, c := range oldT.cols {
		if !slices.Contains(newT.cols, c) && i < len(old) {
			out = append(out, c)
		}
	}
	return out
}

// compareTuples orders rows or keys of literals: NULL first, numbers by
// value, before strings, strings bytewise.
func compareTuples(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareLiterals(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func compareLiterals(a, b string) int {
	if a == b {
		return 0
	}
	if a == "NULL" || b == "NULL" {
		if a == "NULL" {
			return -1
		}
		return 1
	}
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	switch {
	case ea == nil && eb == nil:
		if fa != fb {
			if fa < fb {
				return -1
			}
			return 1
		}
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// clip shortens a row for an error message.
func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

var errTruncated = errors.New("truncated")
