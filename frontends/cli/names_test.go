package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestParseMetadata(t *testing.T) {
	md, err := ParseMetadata([]string{"ci=1", "msg=a=b", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	if md["ci"] != "1" || md["msg"] != "a=b" || md["empty"] != "" || len(md) != 3 {
		t.Fatalf("got %v", md)
	}
	if md, err := ParseMetadata(nil); md != nil || err != nil {
		t.Fatalf("empty: %v %v", md, err)
	}
	bad := map[string]string{
		"novalue":    "not key=value",
		"=v":         "metadata key name is empty",
		"a b=1":      "contains ' '",
		"../x=1":     "contains '.'",
		"k=1\x00k=2": "",
	}
	for in, want := range bad {
		if in == "k=1\x00k=2" {
			_, err := ParseMetadata(strings.Split(in, "\x00"))
			if err == nil || !strings.Contains(err.Error(), "given twice") {
				t.Errorf("duplicate key: %v", err)
			}
			continue
		}
		_, err := ParseMetadata([]string{in})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMetadata(%q) = %v; want an error with %q", in, err, want)
		}
	}
}

func TestNameValidationMessages(t *testing.T) {
	cases := map[string]string{
		"../x":                  `contains ".."`,
		"/abs":                  "absolute path",
		strings.Repeat("a", 65): "the limit is 64",
		"a b":                   "contains ' '",
		"a@b":                   "expected [namespace/]dot without @branch",
		"":                      "empty",
		"x/y/z":                 "more than one '/'",
	}
	for in, want := range cases {
		_, err := parseDotName(in)
		if err == nil {
			t.Errorf("parseDotName(%q) accepted", in)
			continue
		}
		if !errors.Is(err, dotmesh.ErrInvalidName) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseDotName(%q) = %q; want one line with %q", in, err, want)
		}
	}
	for _, ok := range []string{"app", "_x", "team/app", "a-b_C9", strings.Repeat("a", 64)} {
		if _, err := parseDotName(ok); err != nil {
			t.Errorf("parseDotName(%q): %v", ok, err)
		}
	}
	if _, err := parseVolumeName("app._x"); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("reserved subdot: %v", err)
	}
	for _, ok := range []string{"app", "app.web", "app@feature.db", "ns/app.__root__"} {
		if _, err := parseVolumeName(ok); err != nil {
			t.Errorf("parseVolumeName(%q): %v", ok, err)
		}
	}
}

func TestParseRemoteAddress(t *testing.T) {
	good := map[string][2]string{
		"admin@host":           {"admin", "host:32607"},
		"admin@host:1234":      {"admin", "host:1234"},
		"bob@10.0.0.1":         {"bob", "10.0.0.1:32607"},
		"admin@[::1]:99":       {"admin", "[::1]:99"},
		"admin@[::1]":          {"admin", "[::1]:32607"},
		"admin@dm.example.com": {"admin", "dm.example.com:32607"},
	}
	for in, want := range good {
		u, a, err := ParseRemoteAddress(in)
		if err != nil || u != want[0] || a != want[1] {
			t.Errorf("ParseRemoteAddress(%q) = %q, %q, %v; want %v", in, u, a, err, want)
		}
	}
	bad := map[string]string{
		"host":            "USER@HOST",
		"@host":           "user name is empty",
		"admin@":          "not a host",
		"admin@host:0":    "1 to 65535",
		"admin@host:http": "1 to 65535",
		"admin@h:1:2":     "not a host",
		"admin@h/x":       "not a host",
	}
	for in, want := range bad {
		_, _, err := ParseRemoteAddress(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRemoteAddress(%q) = %v; want an error with %q", in, err, want)
		}
	}
}
