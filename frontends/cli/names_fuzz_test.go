package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The CLI's name parsers: a refusal is one line wrapping ErrInvalidName;
// a new dot's name parses as a name to look up too, and no part of it
// starts with '-' or '_'.
func FuzzParseNames(f *testing.F) {
	for _, s := range []string{"app", "ns/app", "-", "_x", "__root__", "/abs", "a/../b", "ns/app@b.s", "-n/app"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		oneLine := func(err error) {
			if !errors.Is(err, dotmesh.ErrInvalidName) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error for %q: %v", s, err)
			}
		}
		if _, err := parseVolumeName(s); err != nil {
			oneLine(err)
		}
		d, err := parseDotName(s)
		if err != nil {
			oneLine(err)
		}
		n, nerr := parseNewDotName(s)
		if nerr != nil {
			oneLine(nerr)
			return
		}
		if err != nil || n != d {
			t.Fatalf("%q: new name %+v, but as a name %+v, %v", s, n, d, err)
		}
		for _, part := range []string{n.Namespace, n.Name} {
			if part == "" || part[0] == '-' || part[0] == '_' {
				t.Fatalf("%q: new dot name part %q", s, part)
			}
		}
	})
}
