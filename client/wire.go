package client

import (
	"context"
	"errors"
	"io"
	"net/textproto"
	"net/url"
)

// The client's calls reach a node through a transport of the client's
// own: the full build sends them with net/http (wire_nethttp.go), but
// for WithDirect's plain-HTTP calls; those, and every call of the light
// dm (build tag dmlight, wire_light.go), go with the HTTP/1.1 of
// client/internal/h1 on one kept connection (direct.go), so that the
// light dm links neither net/http nor crypto/tls: their package inits
// cost every dm process 0.8-1.0 ms (see h1's package doc).

// The methods the client sends.
const (
	methodGet    = "GET"
	methodPost   = "POST"
	methodPut    = "PUT"
	methodDelete = "DELETE"
)

const statusOK = 200

// header holds a request's or an answer's fields by canonical name.
type header = textproto.MIMEHeader

// request is one call as the client hands it to its transport.
type request struct {
	ctx    context.Context
	method string
	url    *url.URL
	header header
	// body is nil for none; length is its size, or -1 for a body
	// streamed as it is read (chunked).
	body   io.Reader
	length int64
	// watch, when not nil, learns the call's connection and the node's
	// interim answers (102 Processing), which are progress.
	watch *idleWatch
}

// answer is a node's final answer to a request; the caller closes body.
type answer struct {
	status     int
	statusLine string // "404 Not Found", as the node sent it
	statusText string // what the status means, for an answer without a body
	header     header
	body       io.ReadCloser
}

// transport sends a request and reads the head of its answer. Its errors
// are the connection's (wrapped in a *url.Error naming the call, as
// net/http's are), or a *requestError for a request it refuses.
type transport interface {
	roundTrip(r *request) (*answer, error)
}

// requestError is a request a transport refuses to send; its err is the
// call's error as it is.
type requestError struct{ err error }

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// ErrNoTLS is returned by New, in a client built without TLS (the light
// dm, build tag dmlight; HasTLS is false), for an https URL or a CA
// certificate: such calls are made by the full build (dm-node).
var ErrNoTLS = errors.New("this client is built without TLS")
