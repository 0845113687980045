package cli

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/daemon"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// tlsFlags are `dm serve`'s HTTPS options; `dm cluster init/join` pass
// them on, and pin ca (default: the certificate itself) in the remote.
type tlsFlags struct{ cert, key, ca string }

func (t *tlsFlags) add(f *pflag.FlagSet) {
	f.StringVar(&t.cert, "tls-cert", "", "serve HTTPS with the PEM certificate (chain) in `FILE`; needs --tls-key")
	f.StringVar(&t.key, "tls-key", "", "PEM private key `FILE` of --tls-cert")
}

// addCA adds --tls-ca, for the commands that start a node and talk to it.
func (t *tlsFlags) addCA(f *pflag.FlagSet) {
	f.StringVar(&t.ca, "tls-ca", "", "PEM CA `FILE` that --tls-cert chains to, pinned in the remote (default: --tls-cert itself, for a self-signed certificate)")
}

func (t *tlsFlags) apply(cfg *daemon.Config) { cfg.TLSCert, cfg.TLSKey = t.cert, t.key }

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
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return nil, "", fmt.Errorf("%w: %s holds no PEM certificate", dotmesh.ErrInvalidArgument, caFile)
	}
	return []string{"--tls-cert", cert, "--tls-key", key}, string(pem), nil
}
