package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// TestErrorKinds: every sentinel, also as a server's wire code, maps to
// its documented exit status and kind.
func TestErrorKinds(t *testing.T) {
	for _, c := range []struct {
		err  error
		kind string
		code int
	}{
		{errors.New("plain"), "error", 1},
		{kinded(errUsage, errors.New("usage: dm x")), "usage", 2},
		{dotmesh.ErrInvalidName, "invalid", 3},
		{dotmesh.ErrInvalidArgument, "invalid", 3},
		{dotmesh.ErrNotFound, "not_found", 4},
		{dotmesh.ErrAlreadyExists, "conflict", 5},
		{dotmesh.ErrConflict, "conflict", 5},
		{dotmesh.ErrAmbiguous, "conflict", 5},
		{dotmesh.ErrDirty, "conflict", 5},
		{dotmesh.ErrInUse, "conflict", 5},
		{dotmesh.ErrUnauthorized, "unauthorized", 6},
		{dotmesh.ErrUnavailable, "unavailable", 7},
		{context.DeadlineExceeded, "unavailable", 7},
		{dotmesh.ErrCorrupt, "corrupt", 8},
		{dotmesh.ErrNotSupported, "not_supported", 9},
		{dotmesh.ErrPermissionDenied, "permission_denied", 10},
		{errInterrupted, "interrupted", 130},
		{context.Canceled, "interrupted", 130},
	} {
		wrapped := fmt.Errorf("doing x: %w", c.err)
		if kind, code := errorKind(wrapped); kind != c.kind || code != c.code {
			t.Errorf("%v: %s %d, want %s %d", c.err, kind, code, c.kind, c.code)
		}
		// The same error as a node sends it and the client reads it back.
		status, body := api.ErrorFor(wrapped)
		if body.Code == "internal" || status == http.StatusInternalServerError {
			continue
		}
		back := &api.RemoteError{Status: status, Message: body.Error, Code: body.Code}
		if kind, code := errorKind(back); kind != c.kind || code != c.code {
			t.Errorf("%v over the wire (%s): %s %d, want %s %d", c.err, body.Code, kind, code, c.kind, c.code)
		}
	}
}

// TestJSONErrors: with --json, also when the command line does not parse,
// an error is one JSON line on stderr and stdout is empty.
func TestJSONErrors(t *testing.T) {
	e, _ := testEnv(t)
	for _, c := range []struct {
		args []string
		kind string
		code int
	}{
		{[]string{"nope", "--json"}, "usage", 2},
		{[]string{"--json", "commit", "--nope"}, "usage", 2},
		{[]string{"init", "../x", "--json"}, "invalid", 3},
		{[]string{"push", "nowhere", "--json"}, "not_found", 4},
	} {
		r := runDM(t, e, c.args...)
		var obj map[string]string
		if err := json.Unmarshal([]byte(r.err), &obj); err != nil || strings.Count(r.err, "\n") != 1 {
			t.Errorf("dm %v: stderr %q is not one JSON line", c.args, r.err)
			continue
		}
		if r.code != c.code || obj["kind"] != c.kind || obj["error"] == "" || len(obj) != 2 || r.out != "" {
			t.Errorf("dm %v: exit %d, %v, stdout %q; want exit %d, kind %s", c.args, r.code, obj, r.out, c.code, c.kind)
		}
	}
}

// TestPushPeerRefusedKeyNamesPeer: the node dm talks to ("local") accepts
// the key, the peer ("b") refuses the key dm handed over; the error names
// b and how to replace its key, with the unauthorized status.
func TestPushPeerRefusedKeyNamesPeer(t *testing.T) {
	e, _ := withNode(t)
	b := servertest.Start(t)
	path := filepath.Join(e["HOME"], ".dotmesh", "config")
	cfg, _ := LoadConfig(path)
	baddr := strings.TrimPrefix(b.URL, "http://")
	cfg.Remotes["b"] = &Remote{User: "admin", Address: baddr, APIKey: b.Key + "x"}
	writeConfig(t, path, cfg)
	mustRun(t, e, "init", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app"))
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "commit", "-m", "one")

	r := runDM(t, e, "push", "b")
	failsWith(t, r, "remote b at "+baddr+" refused the API key")
	if r.code != exitUnauthorized || strings.Contains(r.err, "remote local") || !strings.Contains(r.err, "`dm remote rm b`, then `dm remote add b USER@"+baddr+"`") {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
}

func TestHelpListsExitStatuses(t *testing.T) {
	e, _ := testEnv(t)
	help := runDM(t, e, "--help").out
	for _, want := range []string{"Exit status:", "4    not found", "7    unavailable", "130  interrupted", `{"error": MESSAGE, "kind": KIND}`} {
		if !strings.Contains(help, want) {
			t.Errorf("dm --help lacks %q", want)
		}
	}
}
