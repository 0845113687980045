package dump

import (
	"context"
	"path/filepath"
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
