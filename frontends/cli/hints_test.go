package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// typedErrorCases are the core's typed errors with the line dm printed for
// each before the errors were typed (the core's own message then, with
// its dm advice), and the exit status.
func typedErrorCases() []struct {
	err  error
	want string
	code int
} {
	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	bob := dotmesh.DotName{Namespace: "bob", Name: "web"}
	const id = "0123456789abcdef0123456789abcdef"
	return []struct {
		err  error
		want string
		code int
	}{
		{&dotmesh.NotFoundError{Kind: dotmesh.KindDot, Dot: app}, "not found: dot app does not exist; `dm list` shows the dots", exitNotFound},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindDot, Dot: bob}, "not found: dot bob/web does not exist; `dm list` shows the dots", exitNotFound},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindBranch, Name: "feature", Dot: app}, "not found: dot app has no branch feature; `dm branch` lists them", exitNotFound},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindCommit, Name: "abc123", Dot: bob}, "not found: no commit abc123 in dot bob/web; `dm log` lists commit ids", exitNotFound},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindIncoming, Dot: app}, "not found: no incoming transfer of app on this node; `dm transfers` lists them", exitNotFound},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindIncoming, Name: "feature", Dot: bob}, "not found: no incoming transfer of bob/web@feature on this node; `dm transfers` lists them", exitNotFound},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindTag, Name: "v1", Dot: app}, "not found: no tag v1 in dot app; `dm tag` lists them", exitNotFound},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindRef, Name: "v9", Dot: app}, "not found: no branch, tag or commit v9 in dot app; `dm branch`, `dm tag` and `dm log` list what a ref may name", exitNotFound},
		{&dotmesh.NoCommitsError{Dot: app, Branch: "master"}, "not found: branch master of app has no commits yet; `dm commit -m MSG` makes the first", exitNotFound},
		{&dotmesh.DirtyError{Dot: bob, Branch: "master", Where: "remote origin", Bytes: 4096},
			"uncommitted changes: branch master of bob/web on remote origin has uncommitted changes (about 4096 bytes); nothing was transferred. Commit them there (`dm commit`) or discard them (`dm reset --hard HEAD`), then run the transfer again", exitConflict},
		{&dotmesh.PartlyRestoredError{Dot: app, Branch: "master", Target: id},
			"conflict: the working state of app@master is partly restored to " + id + " (an interrupted reset or transfer); repeat that, or run `dm reset --hard HEAD` to return to the head", exitConflict},
		{&dotmesh.PartlyRestoredError{Dot: app, Branch: "feature", Target: id, Err: fmt.Errorf("%w: pg_restore exited 1", dotmesh.ErrUnavailable)},
			"restoring app@feature to " + id + ": unavailable: pg_restore exited 1 (the working state may be partly restored: run the command again, or `dm reset --hard HEAD` to return to the head)", exitUnavailable},
		// A typed error inside another keeps its advice too.
		{&dotmesh.PartlyRestoredError{Dot: app, Branch: "master", Target: id, Err: &dotmesh.NotFoundError{Kind: dotmesh.KindCommit, Name: id, Dot: app}},
			"restoring app@master to " + id + ": not found: no commit " + id + " in dot app; `dm log` lists commit ids (the working state may be partly restored: run the command again, or `dm reset --hard HEAD` to return to the head)", exitNotFound},
		{&dotmesh.MasterDownError{Dot: bob, Branch: "master", Node: "n1"},
			"unavailable: branch master of bob/web has its working state on node n1, which is not running; `dm dot take-over bob/web master` moves it here, losing that node's uncommitted changes", exitUnavailable},
		{&dotmesh.SourceBoundError{Ref: dotmesh.BranchRef{Dot: id, Branch: "master"}, Subdot: "db", Kind: "postgresql"},
			"already exists: subdot db of " + id + "@master is bound to a postgresql source already; `dm source rm` it first", exitConflict},
		// The core names its Go options; dm names its flags.
		{&dotmesh.InvalidOptionError{Option: "CommitOptions.Message", Problem: "a commit needs a message"}, "invalid argument: a commit needs a message (-m)", exitInvalid},
		{&dotmesh.InvalidOptionError{Option: "GCOptions.Keep", Problem: "the commits to keep must be >= 1, or 0 to remove none"}, "invalid argument: --keep must be >= 1 (0: remove no commits)", exitInvalid},
		{&dotmesh.UncommittedError{Dot: bob, Branch: "dev", Bytes: 12},
			"uncommitted changes: branch dev of bob/web has 12 uncommitted bytes; commit them or use --hard to discard them", exitConflict},
		{&dotmesh.MountsInUseError{Op: "checkout", Users: "docker containers c1, c2"},
			"in use: checkout would change data under docker containers c1, c2; stop them first, or pass --restart to stop and start them around the checkout", exitConflict},
		{&dotmesh.DivergedError{Dot: app, Branch: "master", Common: id},
			"conflict: diverged: branch master of app has diverged: both sides have commits the other lacks (the last common commit is " + id + "); nothing was changed. Pass --stash-on-divergence to move the receiving side's commits to a new branch and take the incoming ones", exitConflict},
		{&dotmesh.DivergedError{Dot: bob, Branch: "dev"},
			"conflict: diverged: branch dev of bob/web has diverged: both sides have commits the other lacks (they share no commit); nothing was changed. Pass --stash-on-divergence to move the receiving side's commits to a new branch and take the incoming ones", exitConflict},
		{fmt.Errorf("pushing app to origin: %w", &dotmesh.DivergedError{Dot: app, Branch: "master", Start: "c2", Head: "c3"}),
			"pushing app to origin: conflict: diverged: branch master of app: the sending side's history starts at c2 (gc removed what came before) and the receiving side's head c3 is not in it, so it cannot be told whether the incoming commits follow it; nothing was changed. Pass --stash-on-divergence to move the receiving side's commits to a new branch and take the incoming ones", exitConflict},
		// Wrapped by the node: the advice stays where the sentence is.
		{fmt.Errorf("pulling app from origin: %w", &dotmesh.DirtyError{Dot: app, Branch: "master", Where: "this node", Bytes: 7}),
			"pulling app from origin: uncommitted changes: branch master of app on this node has uncommitted changes (about 7 bytes); nothing was transferred. Commit them there (`dm commit`) or discard them (`dm reset --hard HEAD`), then run the transfer again", exitConflict},
	}
}

// errorNode is an HTTP server that answers every request with the error
// body a node sends for err (api.ErrorFor, as the server's writeError),
// or with body as given when err is nil.
func errorNode(t *testing.T, err error, body string) map[string]string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err == nil {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(body))
			return
		}
		status, b := api.ErrorFor(err)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(b)
	}))
	t.Cleanup(srv.Close)
	e, path := testEnv(t)
	writeConfig(t, path, &Config{CurrentRemote: "local", Remotes: map[string]*Remote{
		"local": {User: "admin", Address: strings.TrimPrefix(srv.URL, "http://"), APIKey: "k"},
	}})
	return e
}

// TestTypedErrorsPrintAsBefore: each typed error, sent by a node and
// rebuilt by the client, prints exactly dm's old line, in both output
// modes, with the old exit status; and errors.As finds it client-side.
func TestTypedErrorsPrintAsBefore(t *testing.T) {
	for _, c := range typedErrorCases() {
		t.Run(c.want[:20], func(t *testing.T) {
			e := errorNode(t, c.err, "")
			r := runDM(t, e, "log", "--dot", "app")
			if r.err != "dm: "+c.want+"\n" || r.code != c.code {
				t.Fatalf("dm log printed %q, exit %d;\nwant %q, exit %d", r.err, r.code, "dm: "+c.want+"\n", c.code)
			}
			r = runDM(t, e, "log", "--dot", "app", "--json")
			var got struct{ Error, Kind string }
			if err := json.Unmarshal([]byte(r.err), &got); err != nil || got.Error != c.want || r.code != c.code {
				t.Fatalf("dm log --json printed %q, exit %d; want error %q, exit %d", r.err, r.code, c.want, c.code)
			}
			// In process, without the wire, the words are the same.
			var b strings.Builder
			if code := reportError(&b, c.err, false); b.String() != "dm: "+c.want+"\n" || code != c.code {
				t.Fatalf("reportError printed %q, exit %d", b.String(), code)
			}
		})
	}
}

// TestRemoteErrorsRebuildTypes: the client's error is the same type with
// the same data, and still its sentinel.
func TestRemoteErrorsRebuildTypes(t *testing.T) {
	for _, c := range typedErrorCases() {
		_, body := api.ErrorFor(c.err)
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		var back api.Error
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		re := &api.RemoteError{Message: back.Error, Code: back.Code, Reason: back.Reason}
		if re.Error() != c.err.Error() {
			t.Fatalf("message %q, want %q", re.Error(), c.err.Error())
		}
		if hinted(re) != c.want {
			t.Fatalf("hinted %q, want %q", hinted(re), c.want)
		}
		if s := api.Sentinel(body.Code); s == nil || !errors.Is(re, s) {
			t.Fatalf("%q: not %v", re, s)
		}
		want := typedErrors(c.err)
		got := typedErrors(re)
		if len(got) != len(want) {
			t.Fatalf("%q: typed errors %v, want %v", re, got, want)
		}
		for i := range want {
			if got[i].Error() != want[i].Error() || fmt.Sprintf("%T", got[i]) != fmt.Sprintf("%T", want[i]) {
				t.Fatalf("%q: rebuilt %T %q, want %T %q", re, got[i], got[i], want[i], want[i])
			}
		}
	}
}

// TestOldServerErrors: a node that sends no reason (older than it) gets
// its message printed as sent, with the exit status of its code.
func TestOldServerErrors(t *testing.T) {
	e := errorNode(t, nil, `{"error":"not found: dot app does not exist; `+"`dm list`"+` shows the dots","code":"not_found"}`)
	r := runDM(t, e, "log", "--dot", "app")
	if r.err != "dm: not found: dot app does not exist; `dm list` shows the dots\n" || r.code != exitNotFound {
		t.Fatalf("printed %q, exit %d", r.err, r.code)
	}
	// A reason of a type this client does not know is ignored.
	e = errorNode(t, nil, `{"error":"not found: no tag v1 in dot app","code":"not_found","reason":{"type":"no_tag","name":"v1"}}`)
	r = runDM(t, e, "log", "--dot", "app")
	if r.err != "dm: not found: no tag v1 in dot app\n" || r.code != exitNotFound {
		t.Fatalf("printed %q, exit %d", r.err, r.code)
	}
}

// TestTypedErrorsFromANode: the errors a real node gives print dm's old
// lines, advice included.
func TestTypedErrorsFromANode(t *testing.T) {
	ctx := context.Background()
	e, n := withNode(t)
	mustRun(t, e, "init", "app")
	mustRun(t, e, "switch", "app")
	exact := func(r result, want string, code int) {
		t.Helper()
		if r.err != "dm: "+want+"\n" || r.code != code {
			t.Fatalf("printed %q, exit %d;\nwant %q, exit %d", r.err, r.code, "dm: "+want+"\n", code)
		}
	}
	exact(runDM(t, e, "log", "--dot", "nosuch"), "not found: dot nosuch does not exist; `dm list` shows the dots", exitNotFound)
	exact(runDM(t, e, "log", "--branch", "nob"), "not found: dot app has no branch nob; `dm branch` lists them", exitNotFound)
	exact(runDM(t, e, "checkout", "nob"), "not found: dot app has no branch nob; `dm branch` lists them (use `dm checkout -b nob` to create it)", exitNotFound)
	exact(runDM(t, e, "reset", "--hard", "HEAD"), "not found: branch master of app has no commits yet; `dm commit -m MSG` makes the first", exitNotFound)
	exact(runDM(t, e, "transfers", "abort", "app@nob"), "not found: no incoming transfer of app@nob on this node; `dm transfers` lists them", exitNotFound)
	exact(runDM(t, e, "commit", "-m", "one"), "nothing to commit: app@master holds no file yet; pass --allow-empty to commit anyway", exitConflict)
	mustRun(t, e, "commit", "-m", "one", "--allow-empty")
	exact(runDM(t, e, "reset", "--hard", "abcdef12"), "not found: no commit abcdef12 in dot app; `dm log` lists commit ids", exitNotFound)

	// The core names ResetOptions.Hard; dm names --hard.
	dir := strings.TrimSpace(mustRun(t, e, "path", "app"))
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runDM(t, e, "reset", "HEAD")
	if !regexp.MustCompile("^dm: uncommitted changes: branch master of app has [0-9]+ uncommitted bytes; commit them or use --hard to discard them\n$").MatchString(r.err) || r.code != exitConflict {
		t.Fatalf("a reset over uncommitted changes printed %q, exit %d", r.err, r.code)
	}

	mustRun(t, e, "source", "add", "app.cache", "redis", "redis://127.0.0.1:1/0")
	d, err := n.Node.Dot(ctx, dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	exact(runDM(t, e, "source", "add", "app.cache", "redis", "redis://127.0.0.1:2/0"),
		"already exists: subdot cache of "+string(d.ID)+"@master is bound to a redis source already; `dm source rm` it first", exitConflict)
}
