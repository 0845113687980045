package dotmesh

import (
	"reflect"
	"testing"
)

func TestSourceTemplates(t *testing.T) {
	info := CommitInfo{
		"source.db.kind":          "postgresql",
		"source.db.url":           "postgres://app@/shop?host=/run/postgresql",
		"source.db.dump_bytes":    "12",
		"source.cache.kind":       "redis",
		"source.cache.url":        "redis://127.0.0.1:6379/0",
		"source.old.kind":         "mysql", // a commit from before templates: no URL
		"source.../x.kind":        "sqlite",
		"source.../x.url":         "sqlite:///etc/passwd",
		"source.__root__.kind":    "sqlite",
		"source.__root__.url":     "sqlite:///x",
		"sources.snapshot_spread": "1.5",
		"new_bytes_stored":        "3",
	}
	want := []SourceTemplate{
		{Subdot: "cache", Kind: "redis", URL: "redis://127.0.0.1:6379/0"},
		{Subdot: "db", Kind: "postgresql", URL: "postgres://app@/shop?host=/run/postgresql"},
	}
	if got := SourceTemplates(info); !reflect.DeepEqual(got, want) {
		t.Fatalf("SourceTemplates = %+v", got)
	}
	recv := keepSourceTemplates(CommitInfo{"new_bytes_stored": "9", "source.db.url": "mine"}, info)
	if recv["new_bytes_stored"] != "9" || recv["source.db.url"] != "mine" || recv["source.cache.url"] != "redis://127.0.0.1:6379/0" || recv["source.db.kind"] != "postgresql" {
		t.Fatalf("keepSourceTemplates = %v", recv)
	}
	if _, ok := recv["source.db.dump_bytes"]; ok {
		t.Fatal("keepSourceTemplates copied a fact of the sender's dump")
	}
	if got := keepSourceTemplates(nil, CommitInfo{"x": "y"}); got != nil {
		t.Fatalf("no templates: %v", got)
	}
}

// FuzzSourceTemplates: any Info gives templates with valid subdots, a
// kind and a URL, each found in the Info as recorded.
func FuzzSourceTemplates(f *testing.F) {
	f.Add("source.db.kind", "postgresql", "source.db.url", "postgres://u@h/d")
	f.Add("source..kind", "x", "source..url", "y")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		info := CommitInfo{k1: v1, k2: v2}
		for _, st := range SourceTemplates(info) {
			if ValidateSubdot(st.Subdot) != nil || st.Kind == "" || st.URL == "" {
				t.Fatalf("template %+v from %v", st, info)
			}
			if info["source."+st.Subdot+".kind"] != st.Kind || info["source."+st.Subdot+".url"] != st.URL {
				t.Fatalf("template %+v not in %v", st, info)
			}
		}
	})
}
