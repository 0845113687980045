package web

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzParseQuery: any query string parses or is refused with an error;
// what parses is in range and names no path outside the commit.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "skip=50", "q=app&skip=0", "branch=master&dir=__default__/a", "path=a/../b", "after=x/y", "skip=99999999999", "before=0001", "dir=/etc", "rows=1", "rows=yes"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		lq, err := parseQuery(q)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if lq.Skip < 0 || lq.Skip > maxSkip {
			t.Fatalf("skip %d out of range", lq.Skip)
		}
		for _, p := range []string{lq.Dir, lq.Path, lq.After} {
			if p == "" {
				continue
			}
			if strings.HasPrefix(p, "/") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
				t.Fatalf("unclean path %q accepted", p)
			}
		}
		if strings.Contains(lq.After, "/") {
			t.Fatalf("after %q is a path", lq.After)
		}
		if lq.Rows && q.Get("rows") != "1" {
			t.Fatalf("rows=%q counts rows", q.Get("rows"))
		}
	})
}

// FuzzSafeNext: the sign-in page only ever returns to the UI itself.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/ui/", "/ui/dots/a/b?skip=1", "//evil/ui/", "https://evil/ui/", "/ui/\\evil", "/uix"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, Prefix) || strings.HasPrefix(got, "//") {
			t.Fatalf("safeNext(%q) = %q leaves the UI", next, got)
		}
	})
}
