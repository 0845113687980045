//go:build !dmlight

package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// HasTLS says whether this client speaks https: this build does.
const HasTLS = true

// WithHTTPClient uses h as is (for tests and custom transports). Only the
// build with net/http has it.
func WithHTTPClient(h *http.Client) Option { return func(o *options) { o.hc = h } }

// CheckCACert reports whether pem holds a PEM certificate that
// WithCACert can trust.
func CheckCACert(pem []byte) error {
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return fmt.Errorf("%w: the CA certificate holds no PEM certificate", dotmesh.ErrInvalidArgument)
	}
	return nil
}

// newTransport is an http.Client (o.hc, else one of its own) for the node
// at u, or a directTransport for WithDirect.
func newTransport(u *url.URL, o *options) (transport, error) {
	hc, _ := o.hc.(*http.Client)
	switch {
	case hc != nil && o.caPEM != nil:
		return nil, fmt.Errorf("%w: WithCACert and WithHTTPClient conflict; set the CA on the http.Client's transport", dotmesh.ErrInvalidArgument)
	case hc == nil:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // nodes are reached directly; a proxy would see the key
		tr.DialContext = localDial(u, o)
		tr.TLSHandshakeTimeout = o.connect
		if o.caPEM != nil {
			if err := CheckCACert(o.caPEM); err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(o.caPEM)
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: tr}
	}
	if o.timeout > 0 {
		c := *hc
		c.Timeout = o.timeout
		hc = &c
	}
	if o.direct && o.hc == nil {
		return directTransport{
			plain: &h1Transport{dial: localDial(u, o), timeout: o.timeout},
			tls:   httpTransport{hc},
		}, nil
	}
	return httpTransport{hc}, nil
}

// directTransport is WithDirect's: plain HTTP on the calling goroutine
// and one kept connection (h1Transport, as the light dm's), https through
// net/http.
type directTransport struct {
	plain *h1Transport
	tls   httpTransport
}

func (t directTransport) roundTrip(r *request) (*answer, error) {
	if r.url.Scheme == "http" {
		return t.plain.roundTrip(r)
	}
	return t.tls.roundTrip(r)
}

// httpTransport sends a client's requests with an http.Client.
type httpTransport struct{ hc *http.Client }

func (t httpTransport) roundTrip(r *request) (*answer, error) {
	ctx := r.ctx
	if w := r.watch; w != nil {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { w.gotConn(info.Conn) },
			Got1xxResponse: func(int, textproto.MIMEHeader) error {
				w.got1xx()
				return nil
			},
		})
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url.String(), r.body)
	if err != nil {
		return nil, &requestError{fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err)}
	}
	req.Header = http.Header(r.header)
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, err
	}
	return &answer{status: resp.StatusCode, statusLine: resp.Status, statusText: http.StatusText(resp.StatusCode), header: header(resp.Header), body: resp.Body}, nil
}
