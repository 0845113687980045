package flex

import (
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(`{"name":"app","namespace":"team","branch":"dev","subdot":"db",
		"kubernetes.io/pod.name":"web-0","kubernetes.io/pod.namespace":"prod","kubernetes.io/readwrite":"ro","kubernetes.io/fsType":""}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Volume.String(); got != "team/app@dev.db" || o.Pod != "prod/web-0" || !o.ReadOnly {
		t.Fatalf("got %s pod %q ro %v", got, o.Pod, o.ReadOnly)
	}
	for in, want := range map[string]string{
		``:                               "not a JSON object",
		`[]`:                             "not a JSON object",
		`null`:                           "one JSON object",
		`{"name":"a"} {}`:                "one JSON object",
		`{}`:                             `"name" is missing`,
		`{"name":"a b"}`:                 "dot name",
		`{"name":"a","subdot":"_x"}`:     "reserved",
		`{"name":"a","branch":"../x"}`:   "branch name",
		`{"name":"a","namespace":"x/y"}`: "namespace name",
		`{"name":"a","size":"1G"}`:       `unknown option "size"`,
		`{"name":1}`:                     "must be a string",
	} {
		_, err := ParseOptions(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseOptions(%q) = %v; want an error with %q", in, err, want)
		}
	}
}

// FuzzParseOptions: any input either fails cleanly or yields a volume
// whose every part passes the shared name rules.
func FuzzParseOptions(f *testing.F) {
	f.Add(`{"name":"app","subdot":"db","kubernetes.io/pod.name":"p"}`)
	f.Add(`{"name":"a","namespace":"n","branch":"b"}`)
	f.Add(`{"name":"../../etc"}`)
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOptions(s)
		if err != nil {
			return
		}
		v, err := dotmesh.ParseVolumeName(o.Volume.String())
		if err != nil || v != o.Volume {
			t.Fatalf("ParseOptions(%q) gave %+v, which does not round-trip: %v", s, o.Volume, err)
		}
	})
}
