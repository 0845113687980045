package bucket_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestParseURL(t *testing.T) {
	for in, want := range map[string]bucket.URL{
		"s3://bkt":            {Scheme: "s3", Host: "bkt"},
		"s3://bkt/":           {Scheme: "s3", Host: "bkt"},
		"s3://bkt/a/b":        {Scheme: "s3", Host: "bkt", Path: "a/b"},
		"s3://bkt/a/b/":       {Scheme: "s3", Host: "bkt", Path: "a/b"},
		"/srv/remote":         {Scheme: "file", Path: "/srv/remote"},
		"/srv//remote/../r2/": {Scheme: "file", Path: "/srv/r2"},
		"file:///srv/remote":  {Scheme: "file", Path: "/srv/remote"},
		"other+x://host/p":    {Scheme: "other+x", Host: "host", Path: "p"},
	} {
		got, err := bucket.ParseURL(in)
		if err != nil || got != want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, says := range map[string]string{
		"":                    "give s3://BUCKET",
		"bkt/prefix":          "give s3://BUCKET",
		"relative/dir":        "give s3://BUCKET",
		"S3://bkt":            "not a lower-case URL scheme",
		"s3://":               "no bucket",
		"s3:///prefix":        "no bucket",
		"s3://key:secret@bkt": "credentials do not go into the URL",
		"s3://bkt/p?region=x": "no query",
		"s3://bkt/a//b":       "prefix",
		"s3://bkt/../b":       "prefix",
		"s3://bkt/a b":        "prefix",
		"file://host/dir":     "file:///DIR",
		"file://relative":     "file:///DIR",
		"/dir\nwith newline":  "control character",
	} {
		_, err := bucket.ParseURL(in)
		if !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), says) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseURL(%q): %v; want a one-line ErrInvalidArgument saying %q", in, err, says)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, n := range []string{"a", "a/b", "A.b-c_d/0", "a..b", "x-", strings.Repeat("n", 255)} {
		if err := bucket.ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q): %v", n, err)
		}
	}
	for _, n := range []string{"", "/", "/a", "a/", "a//b", ".", "..", "a/../b", ".a", "a/.b", "a b", "a\tb", "ü", "a:b", "a\\b", strings.Repeat("n", 256), strings.Repeat("n/", 300)} {
		err := bucket.ValidateName(n)
		if !errors.Is(err, dotmesh.ErrInvalidName) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ValidateName(%q): %v, want a one-line ErrInvalidName", n, err)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://bkt/a/b", "/srv/x", "file:///x", "s3://k:s@b", "x://", "s3://b/p?q#f", "file://h/x", "s3://b/.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := bucket.ParseURL(s)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseURL(%q): %v, want a one-line ErrInvalidArgument", s, err)
			}
			return
		}
		if u.Scheme == "" || (u.Scheme == "file") != strings.HasPrefix(u.Path, "/") {
			t.Fatalf("ParseURL(%q) = %+v", s, u)
		}
		if u.Scheme != "file" && u.Path != "" && bucket.ValidateName(u.Path) != nil {
			t.Fatalf("ParseURL(%q) gave prefix %q, no valid name", s, u.Path)
		}
		// What String gives parses back to the same.
		if again, err := bucket.ParseURL(u.String()); err != nil || again != u {
			t.Fatalf("ParseURL(%q) = %+v, and its String %q parses to %+v, %v", s, u, u.String(), again, err)
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a/b", ".x", "a//b", "", "ä"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := bucket.ValidateName(s); err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidName) {
				t.Fatalf("ValidateName(%q): %v", s, err)
			}
			return
		}
		if strings.HasPrefix(s, "/") || strings.Contains(s, "//") || strings.Contains(s, "/.") || strings.HasPrefix(s, ".") || len(s) > bucket.MaxNameLen {
			t.Fatalf("ValidateName accepted %q", s)
		}
		if err := bucket.ValidateListPrefix(s); err != nil {
			t.Fatalf("a valid name %q is no valid listing prefix: %v", s, err)
		}
	})
}
