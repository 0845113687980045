//go:build imagefull

package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The fuller image's test builds a Debian root with debootstrap (minutes
// the first time) and a second image, so it is not part of `make test`:
// `make test-image-full` runs it (the imagefull build tag).

// TestImageFull builds the fuller image (`make image-full`: Debian from
// debootstrap, docker-imported, with the dump sources' tools), checks the
// tools are there, and commits a SQLite database through a node in it: the
// container's sqlite3 dumps a database the host made.
func TestImageFull(t *testing.T) {
	b := buildImage(t, "image-full", "-full")
	ref := b.name + ":full"
	for _, tool := range []string{"pg_dump", "mysqldump", "redis-cli", "sqlite3"} {
		if _, errs, code := docker(t, "run", "--rm", "--network", "none", "--entrypoint", tool, ref, "--version"); code != 0 {
			t.Errorf("%s --version in %s: exit %d: %s", tool, ref, code, errs)
		}
	}
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("sqlite3 not found: apt-get install sqlite3 (make test does); the test makes its database with it")
	}
	srv := t.TempDir()
	db := filepath.Join(srv, "app.db")
	if out, err := exec.Command("sqlite3", db, "CREATE TABLE sessions (id TEXT); INSERT INTO sessions VALUES ('alice-in-a-container');").CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}

	n := newImageNode(t, ref)
	c := n.run("-v", srv+":/srv", "--", "serve", "--data-dir", "/var/lib/dotmesh", "--docker-socket=", "--listen", n.addr)
	e := n.connect(c)
	e.ok("init", "app")
	e.ok("source", "add", "app.sessions", "sqlite", "sqlite:///srv/app.db")
	e.ok("commit", "--dot", "app", "-m", "sessions")
	dump := readContainerFile(t, c, strings.TrimSpace(e.ok("path", "app.sessions"))+"/sqlite.sql")
	if !strings.Contains(dump, "CREATE TABLE sessions") || !strings.Contains(dump, "alice-in-a-container") {
		t.Errorf("the commit's sqlite.sql holds no dump of the database: %q", dump)
	}
	n.stop(c)
}
