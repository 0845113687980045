package dump

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// progressLog collects reports, per phase its last.
type progressLog struct {
	mu     sync.Mutex
	phases []string
	last   map[string]dotmesh.Progress
}

func (l *progressLog) ctx() context.Context {
	l.last = map[string]dotmesh.Progress{}
	l.phases = nil
	return dotmesh.WithProgress(ctx, func(p dotmesh.Progress) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if prev, ok := l.last[p.Phase]; ok && p.Bytes < prev.Bytes {
			panic("progress went back in phase " + p.Phase)
		}
		if _, ok := l.last[p.Phase]; !ok {
			l.phases = append(l.phases, p.Phase)
		}
		l.last[p.Phase] = p
	})
}

func (l *progressLog) ended(t *testing.T, phase string, bytes int64) {
	t.Helper()
	p, ok := l.last[phase]
	if !ok || p.Bytes != bytes || p.Total != bytes {
		t.Fatalf("phase %q ended at %+v (seen: %v); want %d of %d", phase, p, l.phases, bytes, bytes)
	}
}

// TestProgressOfLongOperations: a commit reports each database's dump
// and the files it hashes, a rollback the bytes it writes and the
// databases it loads, verify the bytes it reads, gc its phases; each
// ends at its total.
func TestProgressOfLongOperations(t *testing.T) {
	sourcetest.SQLite3(t)
	db := filepath.Join(t.TempDir(), "app.db")
	sourcetest.SQLite(t, db, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM g WHERE i < 5000)
INSERT INTO notes SELECT i, 'note ' || i FROM g;`)
	b := openTest(t)
	br := newBranch(t, b)
	if err := b.AddSource(ctx, br, "notes", dotmesh.SourceSpec{Kind: "sqlite", URL: "sqlite://" + db}); err != nil {
		t.Fatal(err)
	}
	web, err := b.SubdotPath(ctx, br, "web")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(web, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(web, "f"), make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var l progressLog
	c := dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}
	facts, err := b.Commit(l.ctx(), c)
	if err != nil {
		t.Fatal(err)
	}
	dumped, _ := strconv.ParseInt(facts["source.notes.dump_bytes"], 10, 64)
	read, _ := strconv.ParseInt(facts["bytes_read"], 10, 64)
	l.ended(t, "dumping notes", dumped)
	l.ended(t, "hashing", read)
	if _, ok := l.last["syncing"]; !ok || l.phases[len(l.phases)-1] != "syncing" {
		t.Fatalf("commit's phases: %v", l.phases)
	}

	if err := os.WriteFile(filepath.Join(web, "f"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.Rollback(l.ctx(), br, c); err != nil {
		t.Fatal(err)
	}
	l.ended(t, "writing", 3<<20)
	if _, ok := l.last["loading notes"]; !ok {
		t.Fatalf("rollback's phases: %v", l.phases)
	}

	rep, err := b.Verify(l.ctx())
	if err != nil {
		t.Fatal(err)
	}
	l.ended(t, "verifying", rep.Bytes)

	if _, err := b.CollectGarbage(l.ctx()); err != nil {
		t.Fatal(err)
	}
	if len(l.phases) != 2 || l.phases[0] != "marking" || l.phases[1] != "sweeping" {
		t.Fatalf("gc's phases: %v", l.phases)
	}
}
