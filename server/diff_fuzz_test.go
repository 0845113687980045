package server

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzDiffQuery: a diff or status query is read or refused with a
// one-line ErrInvalidArgument; what is read survives a round trip.
func FuzzDiffQuery(f *testing.F) {
	f.Add("from=HEAD%5E&to=HEAD&path=db&path=web/x&content=1&context=5&max_files=2")
	f.Add("rows=true&max_rows=3&max_patch_bytes=10")
	f.Add("to=v1&parent=1")
	f.Add("parent=maybe")
	f.Add("context=-1")
	f.Add("content=yes")
	f.Add("from=a&from=b")
	f.Add("nope=1")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := parseDiffQuery(raw)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("parseDiffQuery(%q): %v", raw, err)
			}
		} else if o.Context < 0 || o.MaxRows < 0 || o.MaxFiles < 0 || o.MaxPatchBytes < 0 {
			t.Fatalf("parseDiffQuery(%q) = %+v: negative limits", raw, o)
		}
		if _, err := parseStatusQuery(raw); err != nil && (!errors.Is(err, dotmesh.ErrInvalidArgument) || strings.ContainsAny(err.Error(), "\n\r")) {
			t.Fatalf("parseStatusQuery(%q): %v", raw, err)
		}
	})
}

func TestDiffQuery(t *testing.T) {
	o, err := parseDiffQuery("from=HEAD%5E&to=v1&branch=dev&path=db&path=web/x&content=1&rows=true&context=5&max_rows=7&max_files=2&max_patch_bytes=9&parent=0")
	if err != nil {
		t.Fatal(err)
	}
	want := dotmesh.DiffOptions{Branch: "dev", From: "HEAD^", To: "v1", Paths: []string{"db", "web/x"}, Content: true, Rows: true, Context: 5, MaxRows: 7, MaxFiles: 2, MaxPatchBytes: 9}
	if o.Branch != want.Branch || o.From != want.From || o.To != want.To || strings.Join(o.Paths, ",") != "db,web/x" || o.Content != want.Content || o.Rows != want.Rows ||
		o.Context != want.Context || o.MaxRows != want.MaxRows || o.MaxFiles != want.MaxFiles || o.MaxPatchBytes != want.MaxPatchBytes {
		t.Fatalf("parsed %+v, want %+v", o, want)
	}
	for raw, msg := range map[string]string{
		"context=-1":  `context="-1"; give a whole number >= 0`,
		"content=yes": `content="yes"; give 1 or 0`,
		"to=a&to=b":   `query parameter "to" is given 2 times`,
		"x=1":         `unknown query parameter "x"`,
		"parent=yes":  `parent="yes"; give 1 or 0`,
	} {
		_, err := parseDiffQuery(raw)
		if !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), msg) {
			t.Errorf("parseDiffQuery(%q) = %v; want %q", raw, err, msg)
		}
	}
	if o, err := parseDiffQuery("to=v1&parent=true"); err != nil || !o.Parent || o.To != "v1" {
		t.Errorf("parent query: %+v %v", o, err)
	}
	if o.Parent {
		t.Errorf("parent=0 read as %+v", o)
	}
	if o, err := parseStatusQuery(url.Values{"rows": {"1"}, "branch": {"b"}}.Encode()); err != nil || !o.Rows || o.Branch != "b" {
		t.Errorf("status query: %+v %v", o, err)
	}
	if _, err := parseStatusQuery("content=1"); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("status takes no content: %v", err)
	}
}
