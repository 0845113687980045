package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// listenFile remembers, in the data directory, the address the API last
// listened on and whether --insecure allowed plain HTTP there, so that a
// restart without --listen (or `dm cluster init` without --port) serves
// where the clients and peers expect it.
const listenFile = "listen.json"

type listenSettings struct {
	Listen   string `json:"listen"`
	Insecure bool   `json:"insecure,omitempty"`
}

// RememberedListen returns the address the node in dataDir last listened
// on and whether that was with --insecure; "" when none is remembered.
func RememberedListen(dataDir string) (listen string, insecure bool, err error) {
	p := filepath.Join(dataDir, listenFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading the remembered listen address: %w", err)
	}
	var s listenSettings
	if err := json.Unmarshal(b, &s); err != nil || s.Listen == "" {
		return "", false, fmt.Errorf("%w: %s does not hold a listen address (%v); fix or remove it, or give --listen", dotmesh.ErrCorrupt, p, err)
	}
	return s.Listen, s.Insecure, nil
}

// resolveListen picks the address to listen on: cfg.Listen, else the
// remembered one (with the --insecure that allowed it), else
// DefaultListen; and refuses plain HTTP beyond loopback without
// --insecure.
func resolveListen(cfg Config, dataDir string) (listenSettings, error) {
	s := listenSettings{Listen: cfg.Listen, Insecure: cfg.Insecure}
	if s.Listen == "" {
		l, insecure, err := RememberedListen(dataDir)
		if err != nil {
			return s, err
		}
		s = listenSettings{Listen: l, Insecure: insecure || cfg.Insecure}
	}
	if s.Listen == "" {
		s.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		return s, fmt.Errorf("%w: listen address %q must be HOST:PORT", dotmesh.ErrInvalidArgument, s.Listen)
	}
	if cfg.TLSCert == "" && !s.Insecure && !api.LoopbackAddr(s.Listen) {
		return s, fmt.Errorf("%w: the API would listen on %s, beyond this machine, over plain HTTP, where API keys and data cross the network in clear; serve HTTPS with --tls-cert/--tls-key, or pass --insecure to accept that", dotmesh.ErrInvalidArgument, s.Listen)
	}
	return s, nil
}

// save remembers s for the next start; a port 0 is remembered as the port
// actually chosen (addr).
func (s listenSettings) save(dataDir, addr string) error {
	if _, port, err := net.SplitHostPort(s.Listen); err == nil && port == "0" {
		s.Listen = addr
	}
	if err := saveSettings(filepath.Join(dataDir, listenFile), s); err != nil {
		return fmt.Errorf("writing the listen address: %w", err)
	}
	return nil
}

// saveSettings writes v as the JSON settings file path (mode 0600),
// through a temp file and a rename.
func saveSettings(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
