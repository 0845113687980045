//go:build !dmlight

// The light build (dmlight) leaves the text diff to dm-node: this file's
// tests build only in the full one.

package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var numberInString = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// stringNumbers returns the paths of the string values in v that hold
// a number.
func stringNumbers(path string, v any) []string {
	switch v := v.(type) {
	case string:
		if numberInString.MatchString(v) {
			return []string{fmt.Sprintf("%s = %q", path, v)}
		}
	case map[string]any:
		var out []string
		for k, x := range v {
			out = append(out, stringNumbers(path+"."+k, x)...)
		}
		return out
	case []any:
		var out []string
		for i, x := range v {
			out = append(out, stringNumbers(fmt.Sprintf("%s[%d]", path, i), x)...)
		}
		return out
	}
	return nil
}

// TestJSONNumbersAreNumbers walks every command with --json output that
// an in-process node can run: each prints valid JSON on stdout, and no
// count, size or duration in it is a string ("bytes": "3").
func TestJSONNumbersAreNumbers(t *testing.T) {
	e := withPeer(t)

	mustRun(t, e, "init", "app")
	p := strings.TrimSpace(mustRun(t, e, "path", "app.web"))
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(p, "f"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	steps := [][]string{
		{"status"},
		{"commit", "-m", "one", "-d", "ticket=x"},
		{"tag", "v1"},
		{"init", "other"},
		{"list"},
		{"dot", "show", "app"},
		{"log", "--dot", "app"},
		{"branch", "--dot", "app"},
		{"diff", "--dot", "app"},
		{"show", "--dot", "app"},
		{"show", "--dot", "app", "--stat"},
		{"tag", "--dot", "app"},
		{"push", "b", "app"},
		{"clone", "b", "app", "--local-name", "copy"},
		{"pull", "b", "app"},
		{"transfers"},
		{"checkout", "--dot", "app", "-b", "exp"},
		{"reset", "--dot", "app", "--hard", "HEAD"},
		{"gc", "--dry-run"},
		{"gc"},
		{"verify"},
		{"remote"},
		{"source", "list", "app"},
		{"user", "add", "bob"},
		{"user", "list"},
		{"key", "add"},
		{"key", "list"},
		{"whoami"},
		{"dot", "sharing", "admin/app"},
		{"audit"},
		{"version"},
	}
	for _, args := range steps {
		if args[0] == "diff" {
			write("two, longer")
		}
		r := runDM(t, e, append(args, "--json")...)
		if r.code != 0 {
			t.Errorf("dm %v --json: %+v", args, r)
			continue
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(r.out)))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Errorf("dm %v --json printed no single JSON value (%v): %q", args, err, r.out)
			continue
		}
		if bad := stringNumbers("", v); len(bad) > 0 {
			t.Errorf("dm %v --json has numbers as strings: %s", args, strings.Join(bad, "; "))
		}
	}
}
