package rowdiff

import (
	"bytes"
	"testing"
)

// fuzzDiff compares two arbitrary dumps of kind: an error is fine, a
// panic or a hang is not, and a dump against itself never differs.
func fuzzDiff(f *testing.F, kind string, seeds ...string) {
	for i := 0; i+1 < len(seeds); i += 2 {
		f.Add(read(f, seeds[i]), read(f, seeds[i+1]))
	}
	f.Fuzz(func(t *testing.T, old, new []byte) {
		opts := Options{MaxRows: 3, MemoryBudget: 4 << 10, TempDir: t.TempDir()}
		Diff(kind, bytes.NewReader(old), bytes.NewReader(new), opts)
		d, err := Diff(kind, bytes.NewReader(old), bytes.NewReader(old), opts)
		if err == nil && d.Changed {
			t.Fatalf("a dump against itself differs: %s", Summary(d))
		}
	})
}

func FuzzPostgres(f *testing.F) { fuzzDiff(f, PostgreSQL, "pg1.sql", "pg2.sql") }
func FuzzMySQL(f *testing.F)    { fuzzDiff(f, MySQL, "mysql1.sql", "mysql2.sql") }
func FuzzSQLite(f *testing.F)   { fuzzDiff(f, SQLite, "sqlite1.sql", "sqlite2.sql") }
func FuzzRedis(f *testing.F)    { fuzzDiff(f, Redis, "redis1.rdb", "redis2.rdb") }
