package requestid_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/internal/requestid"
)

func TestAccept(t *testing.T) {
	for _, id := range []string{"a", "req-1.2_3:4", strings.Repeat("x", requestid.MaxLen)} {
		if got := requestid.Accept(id); got != id {
			t.Errorf("Accept(%q) = %q, want it kept", id, got)
		}
	}
	for _, id := range []string{"", "with space", "new\nline", "quote\"", strings.Repeat("x", requestid.MaxLen+1), "é"} {
		got := requestid.Accept(id)
		if got == id || len(got) != 16 {
			t.Errorf("Accept(%q) = %q, want a new 16-character id", id, got)
		}
	}
	if requestid.Accept("") == requestid.Accept("") {
		t.Error("two new ids are equal")
	}
}

// Lines logged with a request's context carry its id, through
// WithAttrs too; others do not; wrapping twice adds it once.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(requestid.LogHandler(requestid.LogHandler(slog.NewJSONHandler(&buf, nil)))).With("node", "n1")
	ctx := requestid.With(context.Background(), "r-1")
	log.InfoContext(ctx, "in")
	log.Info("out")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var in, out map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &out); err != nil {
		t.Fatal(err)
	}
	if in["request_id"] != "r-1" || in["node"] != "n1" || strings.Count(lines[0], "request_id") != 1 {
		t.Errorf("in a request: %s", lines[0])
	}
	if _, ok := out["request_id"]; ok {
		t.Errorf("outside a request: %s", lines[1])
	}
	if requestid.From(context.Background()) != "" {
		t.Error("an id outside a request")
	}
}

// FuzzAccept: whatever a client sends, the id used is sane (no byte a
// log line or header could be broken by) and bounded.
func FuzzAccept(f *testing.F) {
	for _, s := range []string{"", "abc", "a b", "x\r\ny", strings.Repeat("z", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		got := requestid.Accept(id)
		if got == "" || len(got) > requestid.MaxLen || strings.ContainsAny(got, " \t\r\n\"\\=") {
			t.Fatalf("Accept(%q) = %q", id, got)
		}
		if requestid.Accept(got) != got {
			t.Fatalf("the id used, %q, is not accepted as it is", got)
		}
	})
}
