package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigPathPrecedence(t *testing.T) {
	cases := []struct {
		flag string
		env  map[string]string
		want string
	}{
		{"/f", map[string]string{"DOTMESH_CONFIG": "/e", "HOME": "/h"}, "/f"},
		{"", map[string]string{"DOTMESH_CONFIG": "/e", "HOME": "/h"}, "/e"},
		{"", map[string]string{"HOME": "/h"}, "/h/.dotmesh/config"},
	}
	for _, c := range cases {
		got, err := ConfigPath(c.flag, env(c.env))
		if err != nil || got != c.want {
			t.Errorf("ConfigPath(%q, %v) = %q, %v; want %q", c.flag, c.env, got, err, c.want)
		}
	}
	if got, _ := DefaultDataDir(env(map[string]string{"HOME": "/h"})); got != "/h/.dotmesh/data" {
		t.Errorf("DefaultDataDir = %q", got)
	}
}

func TestLoadMissingConfigIsEmpty(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join(t.TempDir(), "nope"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentRemote != "" || len(cfg.Remotes) != 0 || cfg.Remotes == nil {
		t.Fatalf("got %+v", cfg)
	}
}

func TestLoadBadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	os.WriteFile(p, []byte("{not json"), 0o600)
	_, err := LoadConfig(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("want an error naming the file, got %v", err)
	}
}

func TestSaveConfigRoundTripAndMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub", "dir") // created on save
	p := filepath.Join(dir, "config")
	// A pre-existing world-readable file must end up 0600.
	os.MkdirAll(dir, 0o755)
	os.WriteFile(p, []byte("{}"), 0o644)
	cfg := &Config{CurrentRemote: "local", Remotes: map[string]*Remote{
		"local": {User: "admin", Address: "127.0.0.1:32607", APIKey: "secret", CurrentDot: "app", DataDir: "/d"},
	}}
	if err := SaveConfig(p, cfg); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	got, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Remotes["local"] != *cfg.Remotes["local"] || got.CurrentRemote != "local" {
		t.Fatalf("round trip: got %+v", got.Remotes["local"])
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestSaveConfigNewDirIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	if err := SaveConfig(filepath.Join(dir, "config"), &Config{}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("config dir mode %v, want 0700", st.Mode().Perm())
	}
}

// A reader racing many saves must always see a complete config: a save
// that truncated and rewrote in place would show it empty or half written.
func TestSaveConfigIsAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	big := strings.Repeat("x", 64<<10)
	mk := func(i int) *Config {
		return &Config{CurrentRemote: "r", Remotes: map[string]*Remote{"r": {User: "admin", Address: "h:1", APIKey: big, CurrentDot: string(rune('a' + i%26))}}}
	}
	if err := SaveConfig(p, mk(0)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i < 200; i++ {
			if err := SaveConfig(p, mk(i)); err != nil {
				t.Error(err)
				break
			}
		}
		close(stop)
	}()
	reads := 0
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		default:
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var c Config
		if err := json.Unmarshal(b, &c); err != nil || c.Remotes["r"] == nil || c.Remotes["r"].APIKey != big {
			t.Fatalf("read a partial config (%d bytes): %v", len(b), err)
		}
		reads++
	}
	wg.Wait()
	if reads < 2 {
		t.Logf("only %d reads raced the writes", reads)
	}
}
