package flex

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Paths kubelet uses for FlexVolume drivers.
const (
	DefaultPluginDir = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
	DriverDir        = "dotmesh.io~dm" // vendor~driver
	DriverFile       = "dm"
	// ConfigFile, next to the driver, holds the node address and key:
	// kubelet runs the driver with its own environment, not a user's.
	ConfigFile = "dm-flex.json"
)

// Config is the driver's config file, written by `dm flex install`.
type Config struct {
	URL     string `json:"url"`
	User    string `json:"user,omitempty"`
	APIKey  string `json:"api_key"`
	CACert  string `json:"ca_cert,omitempty"`  // PEM, for https URLs
	LogFile string `json:"log_file,omitempty"` // default: dm-flex.log next to the config
}

// IsDriverPath says whether the program runs as kubelet's driver, named
// .../dotmesh.io~dm/dm.
func IsDriverPath(argv0 string) bool {
	return filepath.Base(filepath.Dir(argv0)) == DriverDir && filepath.Base(argv0) == DriverFile
}

// LoadConfig reads a config file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("flex config %s: %w", path, err)
	}
	if c.URL == "" || c.APIKey == "" {
		return nil, fmt.Errorf("flex config %s lacks url or api_key; run `dm flex install` again", path)
	}
	return &c, nil
}

// Install copies the executable exe to DIR/dotmesh.io~dm/dm and writes the
// config next to it (mode 0600), each atomically (a temp file renamed), so
// kubelet never runs a half-written driver. It returns the driver's path.
func Install(dir, exe string, cfg Config) (string, error) {
	d := filepath.Join(dir, DriverDir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", d, err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeAtomic(filepath.Join(d, ConfigFile), 0o600, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	}); err != nil {
		return "", err
	}
	src, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("reading the dm binary: %w", err)
	}
	defer src.Close()
	target := filepath.Join(d, DriverFile)
	if err := writeAtomic(target, 0o755, func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	}); err != nil {
		return "", err
	}
	return target, nil
}

func writeAtomic(path string, mode os.FileMode, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	err = fill(f)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ConfigPath returns the config file next to the running executable, or
// the one $DOTMESH_FLEX_CONFIG names.
func ConfigPath(getenv func(string) string) (string, bool) {
	if p := getenv("DOTMESH_FLEX_CONFIG"); p != "" {
		return p, true
	}
	exe, err := os.Executable()
	if err != nil {
		return "", false
	}
	p := filepath.Join(filepath.Dir(exe), ConfigFile)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	return p, true
}
