package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// tlsFlags are `dm serve`'s HTTPS options; `dm cluster init/join` pass
// them on, pin ca (default: the certificate itself) in the remote, and
// remember them in the data directory (see recall).
type tlsFlags struct {
	cert, key, ca string
	off           bool // --no-tls: plain HTTP, forgetting what was remembered
}

// tlsFile remembers, in a node's data directory, the TLS flags `dm cluster
// init/join` last started it with: file names, never keys.
const tlsFile = "tls.json"

type tlsSettings struct {
	Cert string `json:"cert_file"`
	Key  string `json:"key_file"`
	CA   string `json:"ca_file,omitempty"`
}

// recall completes the flags for a start in dataDir: none given means the
// ones remembered there (a restart stays on HTTPS); --no-tls, or a start
// without TLS flags on a fresh directory, means plain HTTP.
func (t *tlsFlags) recall(dataDir string) error {
	if t.off {
		if t.cert != "" || t.key != "" || t.ca != "" {
			return fmt.Errorf("%w: --no-tls goes with none of --tls-cert, --tls-key and --tls-ca", dotmesh.ErrInvalidArgument)
		}
		return nil
	}
	if t.cert != "" || t.key != "" || t.ca != "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, tlsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the remembered TLS flags: %w", err)
	}
	var s tlsSettings
	if err := json.Unmarshal(b, &s); err != nil || s.Cert == "" || s.Key == "" {
		return fmt.Errorf("%w: %s does not hold the TLS flags (%v); give --tls-cert/--tls-key again, or --no-tls", dotmesh.ErrCorrupt, filepath.Join(dataDir, tlsFile), err)
	}
	t.cert, t.key, t.ca = s.Cert, s.Key, s.CA
	return nil
}

// remember records the flags (absolute) in dataDir for the next start, or
// forgets them when there are none.
func (t *tlsFlags) remember(dataDir string) error {
	p := filepath.Join(dataDir, tlsFile)
	if t.cert == "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	var s tlsSettings
	for _, f := range []struct{ from, to *string }{{&t.cert, &s.Cert}, {&t.key, &s.Key}, {&t.ca, &s.CA}} {
		if *f.from == "" {
			continue
		}
		abs, err := filepath.Abs(*f.from)
		if err != nil {
			return err
		}
		*f.to = abs
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o600)
}

func (t *tlsFlags) add(f *pflag.FlagSet) {
	f.StringVar(&t.cert, "tls-cert", "", "serve HTTPS with the PEM certificate (chain) in `FILE`; needs --tls-key")
	f.StringVar(&t.key, "tls-key", "", "PEM private key `FILE` of --tls-cert")
}

// addCA adds --tls-ca, for the commands that start a node and talk to it.
func (t *tlsFlags) addCA(f *pflag.FlagSet) {
	f.StringVar(&t.ca, "tls-ca", "", "PEM CA `FILE` that --tls-cert chains to, pinned in the remote (default: --tls-cert itself, for a self-signed certificate)")
}

// addOff adds --no-tls, for the commands that remember the TLS flags.
func (t *tlsFlags) addOff(f *pflag.FlagSet) {
	f.BoolVar(&t.off, "no-tls", false, "serve plain HTTP, forgetting the TLS flags a previous start remembered")
}

func (t *tlsFlags) apply(cfg *node.Config) { cfg.TLSCert, cfg.TLSKey = t.cert, t.key }

// serveArgs returns the flags for `dm serve` (absolute paths: it runs in
// another directory) and the PEM the client pins, both empty without TLS.
func (t *tlsFlags) serveArgs() ([]string, string, error) {
	if t.cert == "" && t.key == "" {
		if t.ca != "" {
			return nil, "", fmt.Errorf("%w: --tls-ca needs --tls-cert and --tls-key", dotmesh.ErrInvalidArgument)
		}
		return nil, "", nil
	}
	if t.cert == "" || t.key == "" {
		return nil, "", fmt.Errorf("%w: --tls-cert and --tls-key go together", dotmesh.ErrInvalidArgument)
	}
	cert, err := filepath.Abs(t.cert)
	if err != nil {
		return nil, "", err
	}
	key, err := filepath.Abs(t.key)
	if err != nil {
		return nil, "", err
	}
	caFile := t.ca
	if caFile == "" {
		caFile = cert
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, "", fmt.Errorf("%w: reading the CA to pin: %v", dotmesh.ErrInvalidArgument, err)
	}
	if err := client.CheckCACert(pem); err != nil {
		if errors.Is(err, client.ErrNoTLS) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("%w: %s holds no PEM certificate", dotmesh.ErrInvalidArgument, caFile)
	}
	return []string{"--tls-cert", cert, "--tls-key", key}, string(pem), nil
}
