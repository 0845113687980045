package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWorkflow walks through what a user does: two subdots committed
// together, history, dirty state, reset, branches.
func TestWorkflow(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")

	web, db := e.path("app.web"), e.path("app.db")
	if web == db {
		t.Fatalf("app.web and app.db share %s", web)
	}
	one := map[string]map[string]string{
		"web": {"index.html": "v1", "static/app.js": "js1"},
		"db":  {"customers": "alice\n", "gone-later": "x"},
	}
	for f, c := range one["web"] {
		writeFile(t, filepath.Join(web, f), c)
	}
	for f, c := range one["db"] {
		writeFile(t, filepath.Join(db, f), c)
	}
	out := e.ok("commit", "-m", "one", "-d", "ci=1")
	if !strings.Contains(out, "one") {
		t.Errorf("commit output %q", out)
	}

	writeFile(t, filepath.Join(web, "index.html"), "v2")
	writeFile(t, filepath.Join(db, "customers"), "alice\nbob\n")
	os.Remove(filepath.Join(db, "gone-later"))
	id2 := strings.TrimSpace(e.ok("commit", "-m", "two", "-H"))
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id2) {
		t.Fatalf("dm commit -H printed %q, not a commit id", id2)
	}

	// History: newest first, with metadata.
	log := e.log("app")
	if len(log) != 2 || log[0].Message != "two" || log[1].Message != "one" || string(log[0].ID) != id2 {
		t.Fatalf("log: %+v", log)
	}
	if log[1].Metadata["ci"] != "1" || len(log[0].Metadata) != 0 {
		t.Fatalf("metadata: %v / %v", log[1].Metadata, log[0].Metadata)
	}
	human := e.ok("log")
	i2, i1 := strings.Index(human, "commit "+id2), strings.Index(human, "commit "+string(log[1].ID))
	if i2 < 0 || i1 < 0 || i2 > i1 || !strings.Contains(human, "ci=1") || !strings.Contains(human, "Author:") || !strings.Contains(human, "Date:") {
		t.Fatalf("dm log:\n%s", human)
	}

	// List: 2 commits, clean; a write makes it dirty.
	it := e.item("app")
	if it.Commits != 2 || it.Usage.Dirty || !it.Current || it.Branch.Name != "master" {
		t.Fatalf("list after two commits: %+v", it)
	}
	table := e.ok("list")
	if !regexp.MustCompile(`(?m)^\* app\s+master\s+\d+(\.\d)? (B|KiB)\s+2\s+no\s*$`).MatchString(table) || !strings.Contains(table, "DOT") {
		t.Fatalf("dm list:\n%s", table)
	}
	if h := e.ok("list", "-H"); !regexp.MustCompile(`^app\tmaster\t\d+\t2\tno\tyes\n$`).MatchString(h) {
		t.Fatalf("dm list -H: %q", h)
	}
	writeFile(t, filepath.Join(web, "index.html"), "uncommitted")
	if it := e.item("app"); !it.Usage.Dirty {
		t.Fatalf("not dirty after a write: %+v", it.Usage)
	}
	if !regexp.MustCompile(`(?m)^\* app\s+.*\syes\s*$`).MatchString(e.ok("list")) {
		t.Fatalf("dm list does not say DIRTY yes:\n%s", e.ok("list"))
	}

	// Reset without --hard refuses on a dirty branch and changes nothing.
	e.fails("uncommitted", "reset", "HEAD")
	if b, _ := os.ReadFile(filepath.Join(web, "index.html")); string(b) != "uncommitted" {
		t.Fatalf("a refused reset changed the working state: %q", b)
	}
	if len(e.log("app")) != 2 {
		t.Fatal("a refused reset changed the log")
	}

	// Reset --hard HEAD^ restores both subdots to commit one, atomically.
	e.ok("reset", "--hard", "HEAD^")
	for sub, want := range one {
		if got := readTree(t, e.path("app."+sub)); !sameTree(got, want) {
			t.Fatalf("after reset --hard HEAD^, %s = %v; want %v", sub, got, want)
		}
	}
	if log := e.log("app"); len(log) != 1 || log[0].Message != "one" {
		t.Fatalf("log after reset: %+v", log)
	}
	if it := e.item("app"); it.Usage.Dirty || it.Commits != 1 {
		t.Fatalf("after reset --hard: %+v", it)
	}

	// A branch has its own working state.
	e.ok("checkout", "-b", "feature")
	fweb := e.path("app.web")
	writeFile(t, filepath.Join(fweb, "index.html"), "feature")
	e.ok("commit", "-m", "on feature")
	e.ok("checkout", "master")
	if got := readTree(t, e.path("app.web")); !sameTree(got, one["web"]) {
		t.Fatalf("master's web after checkout master: %v", got)
	}
	if got := readTree(t, e.path("app@feature.web")); got["index.html"] != "feature" {
		t.Fatalf("feature's web: %v", got)
	}
	if out := e.ok("branch"); out != "  feature\n* master\n" {
		t.Fatalf("dm branch: %q", out)
	}
	if out := e.ok("log", "--branch", "feature", "-H"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "on feature") {
		t.Fatalf("dm log --branch feature -H: %q", out)
	}

	// Reset to a prefix of a commit id: commit two is gone, so make a new
	// one and go back to "one" by prefix.
	writeFile(t, filepath.Join(web, "index.html"), "v3")
	e.ok("commit", "-m", "three")
	first := string(e.log("app")[1].ID)
	e.ok("reset", "--hard", first[:7])
	if got := readTree(t, e.path("app.web")); !sameTree(got, one["web"]) {
		t.Fatalf("after reset to prefix %s: %v", first[:7], got)
	}
	if log := e.log("app"); len(log) != 1 || string(log[0].ID) != first {
		t.Fatalf("log after prefix reset: %+v", log)
	}

	// Deleting the current branch is refused; another one goes.
	e.fails("current branch", "branch", "-d", "master")
	e.ok("branch", "-d", "feature")
	if out := e.ok("branch"); out != "* master\n" {
		t.Fatalf("after branch -d: %q", out)
	}

	show := e.ok("dot", "show")
	for _, want := range []string{"app", "master", first, "db, web", "Dirty:"} {
		if !strings.Contains(show, want) {
			t.Fatalf("dm dot show lacks %q:\n%s", want, show)
		}
	}
}

// TestDotDelete: no terminal and no -f refuses; -f deletes.
func TestDotDelete(t *testing.T) {
	e := newEnv(t)
	e.clusterInit()
	e.ok("init", "app")
	e.ok("init", "other")
	e.fails("pass -f", "dot", "delete", "app")
	if len(e.list()) != 2 {
		t.Fatal("dot delete without -f deleted something")
	}
	e.fails("not found", "dot", "delete", "-f", "nope")
	e.ok("dot", "delete", "-f", "other") // the current dot
	items := e.list()
	if len(items) != 1 || items[0].Name != "app" {
		t.Fatalf("after delete: %+v", items)
	}
	// The current dot went with it: commands need an explicit one now.
	e.fails("no current dot", "commit", "-m", "x")
	e.ok("commit", "--dot", "app", "-m", "x", "--allow-empty")
	e.fails("not found", "switch", "other")
	e.ok("switch", "app")
	e.ok("commit", "-m", "y", "--allow-empty")
	if log := e.log("app"); len(log) != 2 || log[0].Message != "y" {
		t.Fatalf("log after switch: %+v", log)
	}
}
