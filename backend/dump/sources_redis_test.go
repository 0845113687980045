package dump

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestRedisSource: every value type, expiry and two databases survive a
// commit/change/rollback; the same data stores nothing new.
func TestRedisSource(t *testing.T) {
	rd := sourcetest.StartRedis(t)
	var seed strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&seed, "SET user:%d %q\n", i, strings.Repeat(fmt.Sprint(i), 20))
	}
	seed.WriteString("RPUSH queue a b c\nHSET h f1 v1 f2 v2\nSADD s x y z\nZADD z 1 one 2 two\nSET big " + strings.Repeat("x", 200) + "\nSET temp t\nPEXPIRE temp 86400000\nSELECT 3\nSET other db3\n")
	rd.Cmd(t, seed.String())
	state := func() string {
		return rd.Cmd(t, "DBSIZE\nGET user:42\nLRANGE queue 0 -1\nHGETALL h\nSORT s ALPHA\nZRANGE z 0 -1 WITHSCORES\nGET big\nPEXPIRETIME temp\nSELECT 3\nGET other\nDBSIZE\n")
	}
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "cache", dotmesh.SourceSpec{Kind: "redis", URL: rd.URL()}); err != nil {
		t.Fatal(err)
	}
	first := state()
	c1, f1 := commitFacts(t, b, br)
	if !strings.Contains(f1["source.cache.server"], "Redis") || !strings.Contains(f1["source.cache.tool"], "redis-cli") {
		t.Fatalf("facts: %v", f1)
	}
	size := factInt(t, f1, "source.cache.dump_bytes")
	if _, f := commitFacts(t, b, br); factInt(t, f, "new_bytes_stored")*100 > size {
		t.Fatalf("unchanged re-commit stored %s of %d bytes", f["new_bytes_stored"], size)
	}
	if u, err := b.Usage(ctx, br, &c1); err != nil || u.Dirty {
		t.Fatalf("unchanged: %+v %v", u, err)
	}
	rd.Cmd(t, "SET user:42 changed\nDEL queue\nSADD s w\nSET new 1\nSELECT 3\nFLUSHDB\n")
	if u, err := b.Usage(ctx, br, &c1); err != nil || !u.Dirty {
		t.Fatalf("changed: %+v %v", u, err)
	}
	commitFacts(t, b, br)
	if err := b.Rollback(ctx, br, c1); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != first {
		t.Fatalf("rollback: got\n%s\nwant\n%s", got, first)
	}

	rd.Stop()
	if _, err := b.Commit(ctx, dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}); err == nil || !strings.Contains(err.Error(), "source cache") {
		t.Fatalf("commit with redis stopped: %v", err)
	}
}
