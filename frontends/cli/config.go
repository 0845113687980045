package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// LocalRemote is the name of the remote `dm cluster init` writes.
const LocalRemote = "local"

// Config is the client configuration: the remotes dm knows and, per
// remote, the current dot. It holds API keys, so it is written with mode
// 0600.
type Config struct {
	CurrentRemote string             `json:"current_remote,omitempty"`
	Remotes       map[string]*Remote `json:"remotes,omitempty"`
}

// Remote is one node (or cluster) dm talks to.
type Remote struct {
	User    string `json:"user"`
	Address string `json:"address"` // host:port
	APIKey  string `json:"api_key"`
	// CurrentDot is the dot commands act on when none is named.
	CurrentDot string `json:"current_dot,omitempty"`
	// DataDir is set for the node `dm cluster init` started, so that
	// `dm cluster stop` and `reset` find it.
	DataDir string `json:"data_dir,omitempty"`
	// TLS means the node serves HTTPS; CACert (PEM) pins the CA its
	// certificate must chain to (and implies TLS).
	TLS    bool   `json:"tls,omitempty"`
	CACert string `json:"ca_cert,omitempty"`
	// Bucket, when set, makes this remote an object-storage bucket
	// (User, Address and APIKey are then empty).
	Bucket *BucketRemote `json:"bucket,omitempty"`
}

// BucketRemote is a bucket remote in the client config. Credentials and
// passwords are never stored here: they come from the environment, the
// AWS shared files (Profile), PasswordFile or a prompt, each time.
type BucketRemote struct {
	URL          string `json:"url"` // s3://BUCKET[/PREFIX] or file:///DIR
	Endpoint     string `json:"endpoint,omitempty"`
	Region       string `json:"region,omitempty"`
	Profile      string `json:"profile,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
	NoEncryption bool   `json:"no_encryption,omitempty"`
}

// URL is the base URL of the remote's API.
func (r *Remote) URL() string {
	if r.TLS || r.CACert != "" {
		return "https://" + r.Address
	}
	return "http://" + r.Address
}

// RemoteNames returns the remote names, sorted.
func (c *Config) RemoteNames() []string {
	names := make([]string, 0, len(c.Remotes))
	for n := range c.Remotes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ConfigPath returns the client config file: flag, then the
// DOTMESH_CONFIG environment variable, then ~/.dotmesh/config.
func ConfigPath(flag string, getenv func(string) string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if p := getenv("DOTMESH_CONFIG"); p != "" {
		return p, nil
	}
	home, err := homeDir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".dotmesh", "config"), nil
}

// DefaultDataDir is where `dm cluster init` and `dm serve` keep a node's
// data unless told otherwise.
func DefaultDataDir(getenv func(string) string) (string, error) {
	home, err := homeDir(getenv)
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".dotmesh", "data"), nil
}

func homeDir(getenv func(string) string) (string, error) {
	if h := getenv("HOME"); h != "" {
		return h, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory for the default config path: %w; use -c FILE", err)
	}
	return h, nil
}

// LoadConfig reads the config at path. A missing file is an empty config.
func LoadConfig(path string) (*Config, error) {
	cfg := &Config{Remotes: map[string]*Remote{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if fast, ok := decodeConfigFast(b); ok {
		return fast, nil
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		return nil, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("config %s is not valid JSON: %v", path, err))
	}
	if cfg.Remotes == nil {
		cfg.Remotes = map[string]*Remote{}
	}
	for name, r := range cfg.Remotes {
		if r == nil {
			delete(cfg.Remotes, name)
		}
	}
	return cfg, nil
}

// SaveConfig writes cfg to path atomically (a temporary file in the same
// directory, synced, then renamed over path) with mode 0600, so a crash
// never leaves a half-written config and the keys are never readable by
// others, not even briefly.
func SaveConfig(path string, cfg *Config) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating config directory: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600 already; Chmod guards against a
	// platform that does not.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the rename durable; best effort
		d.Close()
	}
	return nil
}

// peekedConfig is a config read only to look at, kept for the next
// loadConfig.
type peekedConfig struct {
	path string
	cfg  *Config
}

// configPath resolves the config file of this invocation.
func (a *app) configPath() (string, error) {
	return ConfigPath(a.configFlag, a.io.Getenv)
}

// loadConfig loads this invocation's config, or takes the one bucketArg
// read just before (then the command reads its config once).
func (a *app) loadConfig() (string, *Config, error) {
	if p := a.peeked; p != nil {
		a.peeked = nil
		return p.path, p.cfg, nil
	}
	path, err := a.configPath()
	if err != nil {
		return "", nil, err
	}
	cfg, err := LoadConfig(path)
	return path, cfg, err
}

// remote returns the remote this invocation uses: --remote, else the
// current one.
func (a *app) remote(cfg *Config) (string, *Remote, error) {
	name := a.remoteFlag
	if name == "" {
		name = cfg.CurrentRemote
	}
	if name == "" {
		if len(cfg.Remotes) == 0 {
			return "", nil, kinded(dotmesh.ErrNotFound, errors.New("no remote configured: run `dm cluster init` to start a local node, or `dm remote add NAME USER@HOST`"))
		}
		return "", nil, errors.New("no current remote: choose one with `dm remote switch NAME` or --remote NAME")
	}
	if err := dotmesh.ValidateName("remote", name); err != nil {
		return "", nil, err
	}
	r, ok := cfg.Remotes[name]
	if !ok {
		return "", nil, kinded(dotmesh.ErrNotFound, fmt.Errorf("no remote named %s; `dm remote` lists them", name))
	}
	return name, r, nil
}
