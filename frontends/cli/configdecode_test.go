package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// savedConfig is a config as SaveConfig writes it.
func savedConfig(t testing.TB, cfg *Config) []byte {
	path := filepath.Join(t.TempDir(), "config")
	if err := SaveConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeConfigFastTakesSaved: what SaveConfig writes (but a bucket
// or a CA's lines) takes the fast path, so a commit never pays for
// encoding/json's decode; a bucket remote and escapes are declined.
func TestDecodeConfigFastTakesSaved(t *testing.T) {
	cfg := &Config{CurrentRemote: "local", Remotes: map[string]*Remote{
		"local": {User: "admin", Address: "127.0.0.1:32607", APIKey: "k3y+/=", CurrentDot: "app", DataDir: "/root/.dotmesh/data"},
		"hub":   {User: "alice", Address: "hub.example:443", APIKey: "x", TLS: true},
		"é":     {},
	}}
	got, ok := decodeConfigFast(savedConfig(t, cfg))
	if !ok || !reflect.DeepEqual(got, cfg) {
		t.Fatalf("fast decode of a saved config: %+v, %v; want %+v", got, ok, cfg)
	}
	for _, c := range []*Config{
		{Remotes: map[string]*Remote{"b": {Bucket: &BucketRemote{URL: "s3://b"}}}},
		{Remotes: map[string]*Remote{"a&b": {}}}, // encoding/json writes \u0026
		{Remotes: map[string]*Remote{"ca": {CACert: "-----BEGIN\nx\n"}}},
	} {
		if got, ok := decodeConfigFast(savedConfig(t, c)); ok {
			t.Errorf("fast decode took %+v as %+v", c, got)
		}
	}
	if got, ok := decodeConfigFast(nil); ok {
		t.Errorf("fast decode took an empty file as %+v", got)
	}
}

// FuzzDecodeConfigFast: what the fast path takes, encoding/json decodes
// the same, as LoadConfig decodes it otherwise.
func FuzzDecodeConfigFast(f *testing.F) {
	f.Add([]byte(`{"current_remote":"local","remotes":{"local":{"user":"admin","address":"127.0.0.1:32607","api_key":"k","data_dir":"/d","tls":false}}}`))
	f.Add([]byte("{\n  \"remotes\": {\n    \"x\": {\"tls\": true, \"ca_cert\": \"c\"}\n  }\n}\n"))
	f.Add([]byte(`{"remotes":{"x":null}}`))
	f.Add([]byte(`{"remotes":{"x":{}},"remotes":{"y":{}}}`))
	f.Add([]byte(`{"Current_Remote":"a","current_remote":"b"}`))
	f.Add([]byte(`{"current_remote":"\u00e9"}`))
	f.Add([]byte(`{"current_remote":"` + "\xff" + `"}`))
	f.Add([]byte(`{"remotes":{"x":{"tls":truex}}}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := decodeConfigFast(data)
		if !ok {
			return
		}
		want := &Config{Remotes: map[string]*Remote{}}
		if err := json.Unmarshal(data, want); err != nil {
			t.Fatalf("%q: the fast path took what encoding/json refuses (%v): %+v", data, err, got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", data, got, want)
		}
	})
}
