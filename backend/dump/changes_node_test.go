package dump

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestNodeChangesOfADatabase: Node.Changes on a dot with a files subdot
// and a SQLite source: the dump file is not listed among the files, the
// database's rows are, and status says which subdot changed.
func TestNodeChangesOfADatabase(t *testing.T) {
	sourcetest.SQLite3(t)
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "app.db")
	sourcetest.SQLite(t, db, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'one'), (2, 'two');`)
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "r.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{openTest(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	if _, err := n.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := n.Sources().Add(ctx, dotmesh.VolumeName{Dot: app, Subdot: "notes"}, dotmesh.SourceSpec{Kind: "sqlite", URL: "sqlite://" + db}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one"}); err != nil {
		t.Fatal(err)
	}
	s, err := n.Changes().Status(ctx, app, dotmesh.StatusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Clean {
		t.Fatalf("status right after the commit: %+v", s)
	}
	if _, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "again"}); err == nil {
		t.Fatal("a commit of an unchanged database was made")
	}
	sourcetest.SQLite(t, db, `UPDATE notes SET body = 'uno' WHERE id = 1; INSERT INTO notes VALUES (3, 'three');`)
	s, err = n.Changes().Status(ctx, app, dotmesh.StatusOptions{Rows: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Clean || len(s.Subdots) != 1 || s.Subdots[0].Kind != "sqlite" || !s.Subdots[0].Changed || s.Subdots[0].Database == nil || len(s.Subdots[0].Files) != 0 {
		t.Fatalf("status after a change: %+v", s)
	}
	if _, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "two"}); err != nil {
		t.Fatal(err)
	}
	d, err := n.Changes().Diff(ctx, app, dotmesh.DiffOptions{From: "HEAD^", To: "HEAD", Rows: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Files) != 0 || len(d.Databases) != 1 || d.Stat.Databases != 1 {
		t.Fatalf("diff: %+v", d)
	}
	var tab *dotmesh.TableDiff
	for i := range d.Databases[0].Tables {
		if d.Databases[0].Tables[i].Table == "notes" {
			tab = &d.Databases[0].Tables[i]
		}
	}
	if tab == nil || tab.Inserted != 1 || tab.Updated != 1 || tab.Deleted != 0 {
		t.Fatalf("row changes of notes: %+v", d.Databases[0])
	}
}

// TestNodeDiffWithParent: DiffOptions.Parent compares a commit with its
// parent, and a first commit, or one whose parent gc removed, with an
// empty tree, so everything in it shows as added (dm show).
func TestNodeDiffWithParent(t *testing.T) {
	ctx := context.Background()
	st, err := bboltstore.Open(filepath.Join(t.TempDir(), "r.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{openTest(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	if _, err := n.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	dir, err := n.Path(ctx, dotmesh.VolumeName{Dot: app, Subdot: "web"})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.txt", "one\n")
	c1, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := n.Changes().Diff(ctx, app, dotmesh.DiffOptions{To: "HEAD", Parent: true, Content: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.From.Commit != "" || d.To.Commit != c1.ID || d.Stat.Added != 2 || d.Stat.Removed+d.Stat.Modified != 0 ||
		len(d.Files) != 2 || d.Files[1].Path != "web/a.txt" || d.Files[1].Patch == "" || d.Files[1].Insertions != 1 {
		t.Fatalf("first commit against its (missing) parent: %+v", d)
	}

	write("a.txt", "uno\n")
	write("b.txt", "two\n")
	if _, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "two"}); err != nil {
		t.Fatal(err)
	}
	write("c.txt", "three\n")
	c3, err := n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "three"})
	if err != nil {
		t.Fatal(err)
	}
	d, err = n.Changes().Diff(ctx, app, dotmesh.DiffOptions{To: "HEAD^", Parent: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.From.Commit != c1.ID || d.From.Ref != "HEAD^^" || d.Stat.Added != 1 || d.Stat.Modified != 1 || len(d.Files) != 2 {
		t.Fatalf("second commit against its parent: %+v", d)
	}

	// gc keeps the last two commits: the second's parent is gone.
	if _, err := n.GC(ctx, dotmesh.GCOptions{Dot: &app, Keep: 2}); err != nil {
		t.Fatal(err)
	}
	d, err = n.Changes().Diff(ctx, app, dotmesh.DiffOptions{To: "HEAD^", Parent: true, Paths: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.From.Commit != "" || d.Stat.Added != 3 || d.Stat.Modified+d.Stat.Removed != 0 {
		t.Fatalf("a commit whose parent gc removed: %+v", d)
	}
	d, err = n.Changes().Diff(ctx, app, dotmesh.DiffOptions{To: string(c3.ID), Parent: true, Paths: []string{"web"}})
	if err != nil || d.Stat.Added != 1 || len(d.Files) != 1 || d.Files[0].Path != "web/c.txt" {
		t.Fatalf("the head against its parent after gc: %+v %v", d, err)
	}

	for _, o := range []dotmesh.DiffOptions{{Parent: true}, {Parent: true, From: "HEAD^", To: "HEAD"}} {
		if _, err := n.Changes().Diff(ctx, app, o); !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), "parent") {
			t.Errorf("Diff(%+v) = %v; want ErrInvalidArgument naming the parent", o, err)
		}
	}
}
