package cli

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestDiffBadInputFailsBeforeConnecting: bad refs, paths and flag values
// of status, diff and show are refused with one line naming the input,
// before any node is asked (no config exists here).
func TestDiffBadInputFailsBeforeConnecting(t *testing.T) {
	e, _ := testEnv(t)
	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"diff", "HEAD", "HEAD^", "HEAD~2"}, "too many refs (3)", exitUsage},
		{[]string{"show", "HEAD", "HEAD^"}, "too many refs (2)", exitUsage},
		{[]string{"diff", "HEAD^x"}, "unexpected", exitInvalid},
		{[]string{"diff", "--", "/etc/passwd"}, "not a path inside the commit", exitInvalid},
		{[]string{"diff", "--", "db/../x"}, "not a path inside the commit", exitInvalid},
		{[]string{"diff", "--", ""}, "an empty path after --", exitInvalid},
		{[]string{"diff", "--", "a//b"}, "doubled or trailing slashes", exitInvalid},
		{[]string{"show", "--", "/"}, "an empty path after --", exitInvalid},
		{[]string{"diff", "--max-rows", "0"}, "--max-rows 0 must be from 1 to 100000", exitInvalid},
		{[]string{"diff", "--max-rows", "x"}, "invalid argument", exitUsage},
		{[]string{"diff", "-U", "0"}, "-U 0 must be from 1 to 10000", exitInvalid},
		{[]string{"show", "-U", "-3"}, "-U -3 must be from 1", exitInvalid},
		{[]string{"diff", "--color", "sometimes"}, `--color "sometimes" must be auto, always or never`, exitInvalid},
		{[]string{"diff", "--stat", "--name-status"}, "pass one of them", exitInvalid},
		{[]string{"diff", "--lines"}, "--lines goes with --stat", exitInvalid},
		{[]string{"diff", "--branch", "x.y"}, "branch name", exitInvalid},
		{[]string{"diff", "--dot", "../x"}, `contains ".."`, exitInvalid},
		{[]string{"status", "--branch", "a b"}, "branch name", exitInvalid},
		{[]string{"status", "--dot", "/abs"}, "absolute path", exitInvalid},
		{[]string{"status", "extra"}, "usage: dm status", exitUsage},
		{[]string{"status", "--bogus"}, "unknown flag: --bogus", exitUsage},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runDM(t, e, c.args...)
			failsWith(t, r, c.want)
			if r.code != c.code {
				t.Fatalf("exit status %d; want %d", r.code, c.code)
			}
		})
	}
	// With good input the next complaint is the missing remote.
	failsWith(t, runDM(t, e, "diff", "--stat", "HEAD~1", "HEAD", "--", "db/", "web/index.html"), "no remote configured")
}

func TestParseDiffPaths(t *testing.T) {
	got, err := parseDiffPaths([]string{"db/", "web/a b.txt", "__default__"})
	if err != nil || strings.Join(got, "|") != "db|web/a b.txt|__default__" {
		t.Fatalf("got %q, %v", got, err)
	}
	for _, bad := range []string{"", "/", "./x", "x/.", "a//b", "..", "a\x00b", "/abs"} {
		if _, err := parseDiffPaths([]string{bad}); !badInput(err) {
			t.Errorf("%q: %v; want invalid input", bad, err)
		}
	}
}

// FuzzParseDiffPaths: an accepted path is a clean tree path the engine
// accepts, without a trailing slash; a refused one is invalid input.
func FuzzParseDiffPaths(f *testing.F) {
	for _, s := range []string{"db", "db/", "web/index.html", "", "/", "a//b", "../x", "a/./b", "x\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseDiffPaths([]string{s})
		if err != nil {
			if !badInput(err) {
				t.Fatalf("%q: %v is not invalid input", s, err)
			}
			return
		}
		if len(got) != 1 || got[0] == "" || strings.HasSuffix(got[0], "/") || dotmesh.ValidateTreePath(got[0]) != nil {
			t.Fatalf("%q: accepted as %q", s, got)
		}
	})
}

// sampleDiff has one change of every kind the output knows.
func sampleDiff() *dotmesh.Diff {
	return &dotmesh.Diff{
		Dot: dotmesh.DotName{Namespace: "admin", Name: "app"},
		Files: []dotmesh.FileDiff{
			{Path: "web/bin", Kind: dotmesh.ChangeModified, OldSize: 100, NewSize: 2000, OldMode: 0o644, NewMode: 0o644, Binary: true},
			{Path: "web/dir", Kind: dotmesh.ChangeAdded, NewMode: fs.ModeDir | 0o755},
			{Path: "web/index.html", Kind: dotmesh.ChangeModified, OldSize: 6, NewSize: 8, OldMode: 0o644, NewMode: 0o755, Insertions: 2, Deletions: 1,
				Patch: "--- a/web/index.html\n+++ b/web/index.html\n@@ -1,2 +1,3 @@\n a\n-b\n+c\x1b[2J\n+d\n"},
			{Path: "web/link", Kind: dotmesh.ChangeModified, OldMode: fs.ModeSymlink | 0o777, NewMode: fs.ModeSymlink | 0o777, OldTarget: "x", NewTarget: "y"},
			{Path: "web/old.txt", Kind: dotmesh.ChangeRemoved, OldSize: 3, OldMode: 0o600, Deletions: 1, Patch: "--- a/web/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-old\n"},
			{Path: "web/t", Kind: dotmesh.ChangeTypeChanged, OldSize: 2, OldMode: 0o644, NewMode: fs.ModeSymlink | 0o777, NewTarget: "index.html"},
		},
		Databases: []dotmesh.DatabaseDiff{{
			Subdot: "db", Kind: "postgresql", Changed: true,
			Schema: []dotmesh.SchemaChange{
				{Kind: dotmesh.SchemaAdded, Object: "table", Name: "orders"},
				{Kind: dotmesh.SchemaChanged, Object: "column", Table: "accounts", Name: "balance", Old: "integer", New: "bigint"},
			},
			Tables: []dotmesh.TableDiff{{
				Table: "accounts", Columns: []string{"id", "name", "balance"}, Key: []string{"id"},
				Inserted: 2, Deleted: 1, Updated: 1, RowsTruncated: true,
				Rows: []dotmesh.RowChange{
					{Kind: dotmesh.RowDeleted, Key: []string{"7"}, Old: []string{"7", "'carol'", "5"}},
					{Kind: dotmesh.RowInserted, Key: []string{"8"}, New: []string{"8", "'" + strings.Repeat("z", 70) + "'", "1"}},
					{Kind: dotmesh.RowUpdated, Key: []string{"2"}, Old: []string{"2", "'bob'", "10"}, New: []string{"2", "'bob'", "20"}, Changed: []string{"balance"}},
				},
			}, {
				Table: "log", Columns: []string{"msg"}, Inserted: 1,
				Rows: []dotmesh.RowChange{{Kind: dotmesh.RowInserted, New: []string{"'hi'"}}},
			}},
		}, {Subdot: "cache", Kind: "redis", Changed: true}},
		Stat: dotmesh.DiffStat{Added: 1, Removed: 1, Modified: 3, TypeChanged: 1, Insertions: 2, Deletions: 2, Databases: 2},
	}
}

func TestWritePatches(t *testing.T) {
	var b bytes.Buffer
	writePatches(&b, sampleDiff(), false)
	want := `diff --dm a/web/bin b/web/bin
Binary files a/web/bin and b/web/bin differ (100 -> 2000 bytes)
diff --dm a/web/dir/ b/web/dir/
new directory mode 040755
diff --dm a/web/index.html b/web/index.html
old mode 100644
new mode 100755
--- a/web/index.html
+++ b/web/index.html
@@ -1,2 +1,3 @@
 a
-b
+c?[2J
+d
diff --dm a/web/link b/web/link
--- a/web/link
+++ b/web/link
@@ -1 +1 @@
-x
\ No newline at end of file
+y
\ No newline at end of file
diff --dm a/web/old.txt b/web/old.txt
deleted file mode 100600
--- a/web/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-old
diff --dm a/web/t b/web/t
old mode 100644
new mode 120000
--- a/web/t
+++ b/web/t
@@ -0,0 +1 @@
+index.html
\ No newline at end of file
diff --dm a/db/ b/db/ (postgresql database)
schema:
  + table orders
  ~ column accounts.balance: integer -> bigint
table accounts (key id): +2 -1 ~1 rows
  - (7) 7, 'carol', 5
  + (8) 8, 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz…, 1
  ~ (2) balance: 10 -> 20
  ... 1 more (--max-rows N lists more)
table log (no primary key: compared as rows): +1 -0 ~0 rows
  + 'hi'
diff --dm a/cache/ b/cache/ (redis database)
changed (rows not compared: --no-rows)
`
	if got := b.String(); got != want {
		t.Fatalf("patch output:\n%s\nwant:\n%s", got, want)
	}
	// In colour, every line of a patch is painted and reset.
	b.Reset()
	writePatches(&b, sampleDiff(), true)
	for _, want := range []string{ansiBold + "diff --dm a/web/bin b/web/bin" + ansiReset, ansiGreen + "+d" + ansiReset, ansiRed + "-b" + ansiReset, ansiCyan + "@@ -1,2 +1,3 @@" + ansiReset, ansiRed + "  - (7) 7, 'carol', 5" + ansiReset} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("colour output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteStatAndNameStatus(t *testing.T) {
	var b bytes.Buffer
	writeStat(&b, sampleDiff(), true)
	want := ` web/bin        | Bin 100 -> 2000 bytes
 web/dir/       | 0
 web/index.html | 3 ++-
 web/link       | 0
 web/old.txt    | 1 -
 web/t          | 0
 db/            | +3 -1 ~1 rows in 2 tables, 2 schema changes (postgresql)
 cache/         | changed (redis)
 6 files changed, 2 insertions(+), 2 deletions(-), 2 databases changed
`
	if got := b.String(); got != want {
		t.Fatalf("--stat:\n%q\nwant:\n%q", got, want)
	}
	// Without line counts: sizes, and the bytes in the summary.
	b.Reset()
	d := sampleDiff()
	d.Stat.BytesAdded, d.Stat.BytesRemoved = 1902, 3
	writeStat(&b, d, false)
	want = ` web/bin        | Bin 100 -> 2000 bytes
 web/dir/       | directory
 web/index.html | 6 -> 8 bytes
 web/link       | symlink
 web/old.txt    | 3 -> 0 bytes
 web/t          | type changed
 db/            | +3 -1 ~1 rows in 2 tables, 2 schema changes (postgresql)
 cache/         | changed (redis)
 6 files changed, 1.9 KiB added(+), 3 B removed(-), 2 databases changed
`
	if got := b.String(); got != want {
		t.Fatalf("--stat without lines:\n%q\nwant:\n%q", got, want)
	}
	b.Reset()
	writeNameStatus(&b, sampleDiff())
	if got := b.String(); got != "M\tweb/bin\nA\tweb/dir/\nM\tweb/index.html\nM\tweb/link\nD\tweb/old.txt\nT\tweb/t\nM\tdb/\nM\tcache/\n" {
		t.Fatalf("--name-status: %q", got)
	}
	b.Reset()
	writeNumstat(&b, sampleDiff(), false)
	if got := b.String(); got != "100\t2000\tweb/bin\n0\t0\tweb/dir/\n6\t8\tweb/index.html\n0\t0\tweb/link\n3\t0\tweb/old.txt\n2\t0\tweb/t\ntable\tdb\taccounts\t2\t1\t1\ntable\tdb\tlog\t1\t0\t0\ndatabase\tcache\tredis\n" {
		t.Fatalf("--stat -H: %q", got)
	}
	b.Reset()
	writeNumstat(&b, sampleDiff(), true)
	if got := b.String(); got != "-\t-\tweb/bin\n0\t0\tweb/dir/\n2\t1\tweb/index.html\n0\t0\tweb/link\n0\t1\tweb/old.txt\n0\t0\tweb/t\ntable\tdb\taccounts\t2\t1\t1\ntable\tdb\tlog\t1\t0\t0\ndatabase\tcache\tredis\n" {
		t.Fatalf("--stat --lines -H: %q", got)
	}
	// Nothing changed: nothing printed.
	b.Reset()
	writeStat(&b, &dotmesh.Diff{}, false)
	if b.Len() != 0 {
		t.Fatalf("empty --stat: %q", b.String())
	}
}

func TestStatSummaryAndBars(t *testing.T) {
	for _, c := range []struct {
		s    dotmesh.DiffStat
		want string
	}{
		{dotmesh.DiffStat{Modified: 1, Insertions: 1, Deletions: 1}, " 1 file changed, 1 insertion(+), 1 deletion(-)"},
		{dotmesh.DiffStat{Added: 2, Insertions: 5}, " 2 files changed, 5 insertions(+)"},
		{dotmesh.DiffStat{Removed: 1, Deletions: 3}, " 1 file changed, 3 deletions(-)"},
		{dotmesh.DiffStat{Modified: 1}, " 1 file changed, 0 insertions(+), 0 deletions(-)"},
		{dotmesh.DiffStat{Databases: 1}, " 0 files changed, 0 insertions(+), 0 deletions(-), 1 database changed"},
	} {
		if got := statSummary(c.s, true); got != c.want {
			t.Errorf("%+v: %q; want %q", c.s, got, c.want)
		}
	}
	if i, d := scaleBar(3, 2, 5, 50); i != 3 || d != 2 {
		t.Fatalf("unscaled: %d %d", i, d)
	}
	if i, d := scaleBar(900, 1, 1000, 50); i != 45 || d != 1 {
		t.Fatalf("scaled: %d %d", i, d)
	}
}

func TestWriteStatus(t *testing.T) {
	st := &dotmesh.Status{
		Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}, Branch: "master", Head: "0123456789abcdef0123456789abcdef",
		Subdots: []dotmesh.SubdotStatus{
			{Subdot: "cache", Kind: "redis"},
			{Subdot: "db", Kind: "sqlite", Changed: true, Database: &dotmesh.DatabaseDiff{Subdot: "db", Kind: "sqlite", Changed: true,
				Tables: []dotmesh.TableDiff{{Table: "t", Inserted: 3, Deleted: 1, Updated: 2}}}},
			{Subdot: "same", Kind: "files"},
			{Subdot: "web", Kind: "files", Changed: true, Files: []dotmesh.FileDiff{
				{Path: "web/a", Kind: dotmesh.ChangeAdded, NewSize: 1536},
				{Path: "web/b", Kind: dotmesh.ChangeModified, OldSize: 3, NewSize: 5},
				{Path: "web/c", Kind: dotmesh.ChangeRemoved, OldSize: 12},
				{Path: "web/d", Kind: dotmesh.ChangeAdded, NewMode: fs.ModeDir | 0o755},
			}},
		},
	}
	var b bytes.Buffer
	if err := writeStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	want := "On branch master of app\nHEAD is 0123456789ab\n\n" +
		"subdot cache (redis database): unchanged\n\n" +
		"subdot db (sqlite database): changed\n\ttable t: +3 -1 ~2 rows\n\n" +
		"subdot web:\n\tadded:      web/a (1.5 KiB)\n\tmodified:   web/b (3 B -> 5 B)\n\tdeleted:    web/c (12 B)\n\tadded:      web/d/ (directory)\n\n" +
		"(`dm commit -m MESSAGE` records these changes; `dm diff` shows them; `dm reset --hard HEAD` discards them)\n"
	if b.String() != want {
		t.Fatalf("status:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := writeStatusScript(&b, st); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "database\tcache\tredis\tunchanged\ndatabase\tdb\tsqlite\tchanged\ntable\tdb\tt\t3\t1\t2\n"+
		"file\tweb\tA\tweb/a\t0\t1536\nfile\tweb\tM\tweb/b\t3\t5\nfile\tweb\tD\tweb/c\t12\t0\nfile\tweb\tA\tweb/d/\t0\t0\n" {
		t.Fatalf("status -H: %q", got)
	}
	b.Reset()
	if err := writeStatus(&b, &dotmesh.Status{Dot: st.Dot, Branch: "master", Clean: true, Subdots: []dotmesh.SubdotStatus{{Subdot: "web", Kind: "files"}}}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "On branch master of app\nNo commits yet\n\nnothing to commit, working state clean\n" {
		t.Fatalf("clean status: %q", got)
	}
}
