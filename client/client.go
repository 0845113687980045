// Package client talks to a dotmesh node's HTTP API (package api). The CLI
// uses it for local and remote nodes alike. Long calls (Commit, Checkout,
// Reset, GC, Verify) report the node's progress to the function a
// context carries (dotmesh.WithProgress); see progress.go.
//
// Built with the tag dmlight (the light dm), the client sends its calls
// with client/internal/h1 instead of net/http, over plain HTTP only
// (HasTLS is false; New refuses https with ErrNoTLS); see wire.go.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/requestid"
)

// Client calls one node's API with one API key. It is safe for concurrent
// use.
type Client struct {
	base *url.URL
	user string
	key  string
	tr   transport
	// connect and idle bound transfer calls: see WithConnectTimeout and
	// WithIdleTimeout.
	connect, idle time.Duration
}

type options struct {
	caPEM   []byte
	timeout time.Duration
	hc      any // an *http.Client (WithHTTPClient), in a build with net/http
	connect time.Duration
	idle    time.Duration
	direct  bool
	socket  string // WithLocalSocket
}

// Option tunes New.
type Option func(*options)

// WithCACert trusts the PEM certificates (a cluster CA) for https URLs.
// A client built without TLS (HasTLS false) refuses it with ErrNoTLS.
func WithCACert(pem []byte) Option { return func(o *options) { o.caPEM = pem } }

// WithTimeout bounds every call, including reading the answer. Without it
// only ctx bounds a call, since commits of large dots can take a while.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithDirect sends plain-HTTP calls on one kept connection from the
// calling goroutine (h1Transport, which the light build uses for every
// call), for a short-lived process that makes a call or a few: a dm
// command.
func WithDirect() Option { return func(o *options) { o.direct = true } }

// New returns a client for the node at baseURL ("http://127.0.0.1:32607")
// that authenticates as user (empty means admin) with apiKey.
func New(baseURL, user, apiKey string, opts ...Option) (*Client, error) {
	u, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	if user == "" {
		user = api.AdminUser
	}
	if apiKey == "" {
		return nil, fmt.Errorf("%w: no API key for %s; it is in the node's data directory (admin-api-key)", dotmesh.ErrUnauthorized, u.Redacted())
	}
	return build(u, user, apiKey, opts)
}

// parseBase checks a node's base URL.
func parseBase(baseURL string) (*url.URL, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("%w: node URL %q: %v", dotmesh.ErrInvalidArgument, baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: node URL %q must look like http://HOST:%d or https://HOST:%d", dotmesh.ErrInvalidArgument, baseURL, api.DefaultPort, api.DefaultPort)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// build is a client for u with opts; without a key it sends none.
func build(u *url.URL, user, apiKey string, opts []Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.connect <= 0 {
		o.connect = DefaultConnectTimeout
	}
	if o.idle <= 0 {
		o.idle = DefaultIdleTimeout
	}
	tr, err := newTransport(u, &o)
	if err != nil {
		return nil, err
	}
	return &Client{base: u, user: user, key: apiKey, tr: tr, connect: o.connect, idle: o.idle}, nil
}

// Healthz asks the node at baseURL whether it serves: GET /healthz, which
// needs no key (dm cluster init polls it while a node starts).
func Healthz(ctx context.Context, baseURL string, opts ...Option) error {
	u, err := parseBase(baseURL)
	if err != nil {
		return err
	}
	c, err := build(u, "", "", opts)
	if err != nil {
		return err
	}
	resp, err := c.tr.roundTrip(c.request(ctx, nil, methodGet, "/healthz", nil, header{}, nil))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.body, 4<<10))
	resp.body.Close()
	if resp.status != statusOK {
		return fmt.Errorf("GET /healthz: %s", resp.statusLine)
	}
	return nil
}

// URL returns the node's base URL.
func (c *Client) URL() string { return c.base.String() }

// maxResponse bounds what is read from a node: big enough for thousands of
// dots, small enough that a wrong server cannot exhaust memory.
const maxResponse = 256 << 20

// do sends one request. in is encoded as the JSON body when not nil; out
// receives the JSON answer when not nil. Only ctx bounds it once
// connected: commits, gc and the like may take long before they answer.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.call(ctx, nil, method, path, query, nil, in, out)
}

// doTransfer is do for a call of the transfer protocol, which a node
// answers promptly: the idle timeout applies.
func (c *Client) doTransfer(ctx context.Context, method, path string, query url.Values, hdr header, in, out any) error {
	ctx, w := c.watchIdle(ctx)
	defer w.stop()
	return w.error(c.call(ctx, w, method, path, query, hdr, in, out))
}

// call is do, with the answer's bytes re-arming w when not nil and the
// request carrying hdr's headers besides its own.
func (c *Client) call(ctx context.Context, w *idleWatch, method, path string, query url.Values, hdr header, in, out any) error {
	var body []byte
	if in != nil {
		var b []byte
		var err error
		if e, ok := in.(requestEncoder); ok {
			b, err = e.encodeRequest()
		} else {
			b, err = json.Marshal(in)
		}
		if err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
		body = b
	}
	h := header{}
	if in != nil {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Accept", "application/json")
	req := c.request(ctx, w, method, path, query, h, hdr)
	if in != nil {
		req.body, req.length = bytes.NewReader(body), int64(len(body))
	}
	resp, err := c.tr.roundTrip(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.body.Close()
	var lr io.Reader = io.LimitReader(resp.body, maxResponse)
	if w != nil {
		lr = progressReader{lr, w}
	}
	if resp.status < 200 || resp.status > 299 {
		return remoteError(resp, lr)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, lr) // lets the connection be reused
		return nil
	}
	if so, ok := out.(*streamedOut); ok {
		return so.read(resp.header.Get("Content-Type"), lr)
	}
	var derr error
	if d, ok := out.(typedAnswerDecoder); ok {
		derr = d.decodeTypedAnswer(resp.header.Get("Content-Type"), lr)
	} else {
		derr = decodeOut(lr, out)
	}
	if derr != nil {
		return fmt.Errorf("%w: reading the answer of %s %s from %s: %v", dotmesh.ErrCorrupt, method, path, c.base.Redacted(), derr)
	}
	return nil
}

// request is the request of a call to path (escaped already) below the
// node's URL: hdr's headers over h's, then the request id and the
// credentials. It has no body yet.
func (c *Client) request(ctx context.Context, w *idleWatch, method, path string, query url.Values, h, hdr header) *request {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path // path is escaped already
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = query.Encode()
	if id := requestid.From(ctx); id != "" {
		h.Set(api.RequestIDHeader, id)
	}
	for k, v := range hdr {
		h[k] = v
	}
	if c.key != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.key)))
	}
	return &request{ctx: ctx, method: method, url: &u, header: h, watch: w}
}

// answerDecoder is an out of call that decodes the answer's body itself
// (a long log's page, see History).
type answerDecoder interface {
	decodeAnswer(body io.Reader) error
}

// typedAnswerDecoder is an answerDecoder for an answer that may come in
// another media type than JSON (a history page as api.HistoryLines).
type typedAnswerDecoder interface {
	decodeTypedAnswer(contentType string, body io.Reader) error
}

func (c *Client) transportError(err error) error {
	var re *requestError
	if errors.As(err, &re) {
		return re.err
	}
	// First: a dial timeout also counts as context.DeadlineExceeded.
	if ce := c.connectError(err); ce != nil {
		return ce
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, dotmesh.ErrUnavailable) {
		return err // worded already (the idle watch)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w: no dotmesh node answers at %s; is `dm serve` running? (`dm cluster init` starts one)", dotmesh.ErrUnavailable, c.base.Redacted())
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		what := "has no address"
		if !dnsErr.IsNotFound {
			what = "could not be looked up (" + dnsErr.Err + ")"
		}
		return fmt.Errorf("%w: the host name %s of the dotmesh node at %s %s; check the address (`dm remote -v`) and the machine's DNS", dotmesh.ErrUnavailable, dnsErr.Name, c.base.Redacted(), what)
	}
	return fmt.Errorf("%w: talking to the dotmesh node at %s: %w", dotmesh.ErrUnavailable, c.base.Redacted(), err)
}

// remoteError turns an error answer into an *api.RemoteError, also when a
// proxy or a non-dotmesh server answered with something that is not an
// api.Error.
func remoteError(resp *answer, body io.Reader) error {
	data, _ := io.ReadAll(io.LimitReader(body, 64<<10))
	var e api.Error
	if err := json.Unmarshal(data, &e); err == nil && e.Error != "" {
		return &api.RemoteError{Status: resp.status, Message: e.Error, Code: e.Code, Reason: e.Reason}
	}
	msg := strings.TrimSpace(string(data))
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = resp.statusText
	}
	return &api.RemoteError{
		Status:  resp.status,
		Message: fmt.Sprintf("the server answered %s: %s (is this a dotmesh node?)", resp.statusLine, msg),
		Code:    codeForStatus(resp.status),
	}
}

func codeForStatus(status int) string {
	switch status {
	case 401:
		return "unauthorized"
	case 403:
		return "permission_denied"
	case 404:
		return "not_found"
	case 409:
		return "conflict"
	case 400, 413, 405: // Bad Request, Content Too Large, Method Not Allowed
		return "invalid_argument"
	case 502, 503, 504: // Bad Gateway, Service Unavailable, Gateway Timeout
		return "unavailable"
	case 501:
		return "not_supported"
	}
	return "internal"
}
