package cli

import (
	"errors"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// withEnv is e with more variables.
func withEnv(e map[string]string, kv ...string) map[string]string {
	out := maps.Clone(e)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// failsWithCode is failsWith and an exit status.
func failsWithCode(t *testing.T, r result, want string, code int) {
	t.Helper()
	failsWith(t, r, want)
	if r.code != code {
		t.Fatalf("exit %d; want %d (%s)", r.code, code, r.err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]float64{"100": 100, "10": 10, "2.5%": 2.5, "0.01": 0.01} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "101", "x", "NaN", "Inf", "50%%"} {
		if _, err := ParsePercent(in); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("ParsePercent(%q): %v; want an invalid-argument error", in, err)
		}
	}
}

func FuzzParsePercent(f *testing.F) {
	for _, s := range []string{"100", "2.5%", "0", "1e2", "NaN", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParsePercent(s)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParsePercent(%q): %v", s, err)
			}
			return
		}
		if !(v > 0 && v <= 100) {
			t.Fatalf("ParsePercent(%q) = %v, out of range", s, v)
		}
	})
}

func FuzzParseBucketURL(f *testing.F) {
	for _, s := range []string{"s3://b", "s3://b/p/q", "file:///d", "file://x", "s3://", "http://x", "/abs", "s3://b//p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseBucketURL(s)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseBucketURL(%q): %v", s, err)
			}
			return
		}
		if !isBucketAddress(u) {
			t.Fatalf("ParseBucketURL(%q) = %q, which dm would not take for a bucket", s, u)
		}
		if again, err := ParseBucketURL(u); err != nil || again != u {
			t.Fatalf("ParseBucketURL(%q) = %q, which parses as %q, %v", s, u, again, err)
		}
	})
}

func TestBucketCompletion(t *testing.T) {
	e, path := testEnv(t)
	writeConfig(t, path, &Config{CurrentRemote: "node", Remotes: map[string]*Remote{
		"node":   {User: "admin", Address: "127.0.0.1:1", APIKey: "k"},
		"backup": {Bucket: &BucketRemote{URL: "s3://b"}},
		"usb":    {Bucket: &BucketRemote{URL: "file:///media/usb"}},
	}})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"remote", "key", "list", ""}, "backup usb"},
		{[]string{"remote", "unlock", "u"}, "usb"},
		{[]string{"gc", ""}, "backup usb"}, // and the node's dots, when it answers
		{[]string{"verify", "b"}, "backup"},
		{[]string{"list", ""}, "backup node usb"},
		{[]string{"push", ""}, "backup node usb"},
	} {
		if got, directive := completions(t, e, c.args...); strings.Join(got, " ") != c.want || directive != ":4" {
			t.Errorf("dm __complete %q: %q %s; want %q :4", c.args, got, directive, c.want)
		}
	}
}
