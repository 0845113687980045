package dotmesh

import (
	"errors"
	"strings"
	"testing"
)

func TestParseVolumeName(t *testing.T) {
	ok := map[string]VolumeName{
		"app":                   {Dot: DotName{"admin", "app"}},
		"app.db":                {Dot: DotName{"admin", "app"}, Subdot: "db"},
		"app@feature":           {Dot: DotName{"admin", "app"}, Branch: "feature"},
		"ns/app@feat-1.db_2":    {Dot: DotName{"ns", "app"}, Branch: "feat-1", Subdot: "db_2"},
		"app.__root__":          {Dot: DotName{"admin", "app"}, Subdot: "__root__"},
		"app.__default__":       {Dot: DotName{"admin", "app"}, Subdot: "__default__"},
		"_app":                  {Dot: DotName{"admin", "_app"}},
		strings.Repeat("a", 64): {Dot: DotName{"admin", strings.Repeat("a", 64)}},
	}
	for in, want := range ok {
		got, err := ParseVolumeName(in)
		if err != nil {
			t.Errorf("ParseVolumeName(%q): %v", in, err)
			continue
		}
		if got != want {
			t.Errorf("ParseVolumeName(%q) = %+v, want %+v", in, got, want)
		}
		again, err := ParseVolumeName(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q via %q: %+v, %v", in, got.String(), again, err)
		}
	}
	bad := map[string]string{
		"":                      "empty",
		"../x":                  "namespace",
		"/abs":                  "namespace",
		"a/b/c":                 "more than one",
		"app.._x":               "subdot",
		"app._x":                "reserved",
		"app.x.y":               "subdot",
		"app@":                  "branch name is empty",
		"app@../x":              "contains",
		"app@b@c":               "branch",
		"ns/":                   "dot name is empty",
		"a b":                   "contains",
		strings.Repeat("a", 65): "65 characters",
		"app.\x00":              "subdot",
		"app@br/x":              "contains",
	}
	for in, want := range bad {
		_, err := ParseVolumeName(in)
		if err == nil {
			t.Errorf("ParseVolumeName(%q) accepted a bad name", in)
			continue
		}
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("ParseVolumeName(%q): %v does not wrap ErrInvalidName", in, err)
		}
		if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseVolumeName(%q) = %q; want one line mentioning %q", in, err, want)
		}
	}
}

func TestParseDotNameRejectsBranchAndSubdot(t *testing.T) {
	for _, s := range []string{"a@b", "a.b", "ns/a.b"} {
		if _, err := ParseDotName(s); err == nil {
			t.Errorf("ParseDotName(%q) accepted", s)
		}
	}
	n, err := ParseDotName("ns/app")
	if err != nil || n != (DotName{"ns", "app"}) || n.String() != "ns/app" {
		t.Fatalf("ParseDotName(ns/app) = %v, %v", n, err)
	}
	if (DotName{"admin", "app"}).String() != "app" {
		t.Fatal("default namespace must be omitted")
	}
}

func TestParseRef(t *testing.T) {
	ok := map[string]Ref{
		"HEAD":                             {},
		"@":                                {},
		"HEAD^":                            {Back: 1},
		"HEAD^^":                           {Back: 2},
		"HEAD~3":                           {Back: 3},
		"HEAD~":                            {Back: 1},
		"HEAD~2^":                          {Back: 3},
		"abcd":                             {Name: "abcd", Prefix: "abcd"},
		"ABCDEF12^":                        {Name: "ABCDEF12", Prefix: "abcdef12", Back: 1},
		"0123456789abcdef0123456789abcdef": {Name: "0123456789abcdef0123456789abcdef", Prefix: "0123456789abcdef0123456789abcdef"},
		// names: branches and tags
		"master^":                           {Name: "master", Back: 1},
		"feature~2":                         {Name: "feature", Back: 2},
		"v1":                                {Name: "v1"},
		"abc":                               {Name: "abc"},
		"head":                              {Name: "head"},
		"0123456789abcdef0123456789abcdef0": {Name: "0123456789abcdef0123456789abcdef0"},
	}
	for in, want := range ok {
		got, err := ParseRef(in)
		if err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "HEAD~x", "HEAD!", "a/b", "v1.0", "^", "~2", "HEAD~99999999999999999999", strings.Repeat("a", MaxNameLength+1)} {
		if _, err := ParseRef(in); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ParseRef(%q) = %v; want ErrInvalidName", in, err)
		}
	}
}

func FuzzParseVolumeName(f *testing.F) {
	for _, s := range []string{"app", "ns/app@b.s", "app.__root__", "../x", "a/b/c", "app._x", "a@@b..c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVolumeName(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error for %q: %v", s, err)
			}
			return
		}
		for _, part := range []string{v.Dot.Namespace, v.Dot.Name, v.Branch, v.Subdot} {
			if strings.ContainsAny(part, "/.@\x00") || part == ".." {
				t.Fatalf("%q parsed to unsafe part %q", s, part)
			}
		}
		again, err := ParseVolumeName(v.String())
		if err != nil || again != v {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, v.String(), again, err)
		}
	})
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"HEAD", "HEAD^^", "HEAD~12", "abcd^", "HEAD~2^~", "master~2", "v1^", "@^"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("bad error for %q: %v", s, err)
			}
			return
		}
		if r.Back < 0 || r.Back > maxBack {
			t.Fatalf("%q: Back %d out of range", s, r.Back)
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, r.String(), again, err)
		}
	})
}

// A name accepted for something new is a valid name that starts with a
// letter or digit; a refusal is one line wrapping ErrInvalidName.
func FuzzValidateNewName(f *testing.F) {
	for _, s := range []string{"app", "-", "-x", "_x", "__root__", "a-_", "", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateNewName("dot", s)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error for %q: %v", s, err)
			}
			return
		}
		if ValidateName("dot", s) != nil || s[0] == '-' || s[0] == '_' {
			t.Fatalf("ValidateNewName accepted %q", s)
		}
		if (DotName{Namespace: s, Name: s}).ValidateNew() != nil {
			t.Fatalf("DotName %q/%q refused", s, s)
		}
	})
}
