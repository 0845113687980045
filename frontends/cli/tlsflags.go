package cli

import (
	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/daemon"
)

// tlsFlags are `dm serve`'s HTTPS options.
type tlsFlags struct{ cert, key string }

func (t *tlsFlags) add(f *pflag.FlagSet) {
	f.StringVar(&t.cert, "tls-cert", "", "serve HTTPS with the PEM certificate (chain) in `FILE`; needs --tls-key")
	f.StringVar(&t.key, "tls-key", "", "PEM private key `FILE` of --tls-cert")
}

func (t *tlsFlags) apply(cfg *daemon.Config) { cfg.TLSCert, cfg.TLSKey = t.cert, t.key }
