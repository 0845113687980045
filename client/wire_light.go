//go:build dmlight

package client

import (
	"fmt"
	"net/url"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// HasTLS says whether this client speaks https: the light dm's does not;
// it hands commands that need it to dm-node.
const HasTLS = false

// CheckCACert refuses: without TLS there is no certificate to check.
func CheckCACert([]byte) error {
	return fmt.Errorf("%w: %w", dotmesh.ErrNotSupported, ErrNoTLS)
}

// newTransport is an h1Transport (direct.go) for the plain-HTTP node at
// u; WithDirect changes nothing here.
func newTransport(u *url.URL, o *options) (transport, error) {
	if u.Scheme != "http" || o.caPEM != nil {
		return nil, fmt.Errorf("%w: %w (the light dm; dm-node has it): %s", dotmesh.ErrNotSupported, ErrNoTLS, u.Redacted())
	}
	return &h1Transport{dial: localDial(u, o), timeout: o.timeout}, nil
}
