package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
)

// Header holds a head's fields by canonical name (the layout of
// net/http's Header, so a caller can convert one into the other).
type Header map[string][]string

// Get returns the first value of the field key.
func (h Header) Get(key string) string {
	if v := h[textproto.CanonicalMIMEHeaderKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Limits of what ReadResponse accepts: a node's heads are a few hundred
// bytes; these only stop a wrong server from exhausting memory.
const (
	MaxHeadBytes = 64 << 10 // status line and fields together
	maxFields    = 100
)

// ErrMalformed is wrapped by every error about the bytes a server sent.
var ErrMalformed = errors.New("malformed HTTP/1.1 answer")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Request is what WriteRequest sends.
type Request struct {
	Method string
	Target string // the escaped path and query: "/v1/dots?x=y"
	Host   string
	Header Header
	// Body is sent with ContentLength bytes when ContentLength >= 0, or
	// chunked when it is -1; nil sends no body.
	Body          io.Reader
	ContentLength int64
}

// WriteRequest writes r's head and body to w and flushes it. A request
// it refuses leaves w as it was: nothing of it is buffered for the
// connection's next request.
func WriteRequest(w *bufio.Writer, r *Request) error {
	if err := checkRequest(r); err != nil {
		return err
	}
	w.WriteString(r.Method)
	w.WriteByte(' ')
	w.WriteString(r.Target)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(r.Host)
	w.WriteString("\r\n")
	for k, vs := range r.Header {
		for _, v := range vs {
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	switch {
	case r.Body == nil:
		if r.Method == "POST" || r.Method == "PUT" {
			w.WriteString("Content-Length: 0\r\n")
		}
	case r.ContentLength >= 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(r.ContentLength, 10))
		w.WriteString("\r\n")
	default: // -1, as checkRequest allows
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	w.WriteString("\r\n")
	if r.Body != nil {
		if r.ContentLength >= 0 {
			n, err := io.Copy(w, io.LimitReader(r.Body, r.ContentLength))
			if err != nil {
				return fmt.Errorf("h1: sending the request body: %w", err)
			}
			if n != r.ContentLength {
				return fmt.Errorf("h1: the request body held %d bytes, not the %d announced", n, r.ContentLength)
			}
		} else if err := writeChunked(w, r.Body); err != nil {
			return err
		}
	}
	return w.Flush()
}

// checkRequest refuses a request that would be ambiguous on the wire.
func checkRequest(r *Request) error {
	if !validToken(r.Method) {
		return fmt.Errorf("h1: invalid method %q", r.Method)
	}
	if r.Target == "" || r.Target[0] != '/' || strings.ContainsAny(r.Target, " \r\n\x00") {
		return fmt.Errorf("h1: invalid request target %q", r.Target)
	}
	if r.Host == "" || strings.ContainsAny(r.Host, " \r\n\x00/") {
		return fmt.Errorf("h1: invalid host %q", r.Host)
	}
	for k, vs := range r.Header {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if !validToken(k) || ck == "Host" || ck == "Content-Length" || ck == "Transfer-Encoding" {
			return fmt.Errorf("h1: invalid or reserved header field %q", k)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				return fmt.Errorf("h1: header field %s holds a line break", k)
			}
		}
	}
	if r.Body != nil && r.ContentLength < -1 {
		return fmt.Errorf("h1: invalid content length %d", r.ContentLength)
	}
	return nil
}

// writeChunked sends body as chunks of what each Read returned, flushing
// each so that a streamed body reaches the peer as it is produced.
func writeChunked(w *bufio.Writer, body io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			w.WriteString(strconv.FormatInt(int64(n), 16))
			w.WriteString("\r\n")
			w.Write(buf[:n])
			w.WriteString("\r\n")
			if ferr := w.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			_, err = w.WriteString("0\r\n\r\n")
			return err
		}
		if err != nil {
			return fmt.Errorf("h1: sending the request body: %w", err)
		}
	}
}

// Response is the head of an answer and its body.
type Response struct {
	Status int
	Reason string
	Header Header
	// Body yields the body's bytes and io.EOF at its end; reading it to
	// io.EOF is what lets the connection carry the next request.
	Body *Body
	// Close is set when the connection cannot carry another request
	// (Connection: close, HTTP/1.0, or a body that ends with the
	// connection).
	Close bool
}

// Reusable reports whether the connection may carry the next request:
// the body was read to its end and neither side asked to close.
func (r *Response) Reusable() bool { return !r.Close && r.Body.done }

// ReadResponse reads one answer's head from br; method is the request's
// (a HEAD answer has no body). interim, when not nil, is called for each
// 1xx answer skipped before the final one (a node's 102 Processing).
func ReadResponse(br *bufio.Reader, method string, interim func(status int)) (*Response, error) {
	r, _, err := readAnswer(br, method, interim, "")
	return r, err
}

// ReadUpgrade is ReadResponse for a request that asked to switch to
// protocol (Upgrade): a 101 answer naming it ends the HTTP exchange,
// upgraded is true, and the connection's next bytes (br's buffered ones
// first) are the new protocol's. Any other answer is read as
// ReadResponse reads it.
func ReadUpgrade(br *bufio.Reader, method, protocol string, interim func(status int)) (r *Response, upgraded bool, err error) {
	return readAnswer(br, method, interim, protocol)
}

func readAnswer(br *bufio.Reader, method string, interim func(status int), upgrade string) (*Response, bool, error) {
	for {
		r, err := readHead(br)
		if err != nil {
			return nil, false, err
		}
		if r.Status == 101 {
			if upgrade == "" {
				return nil, false, malformed("status 101 Switching Protocols to a request that asked for no upgrade")
			}
			if got := r.Header.Get("Upgrade"); !strings.EqualFold(got, upgrade) {
				return nil, false, malformed("status 101 Switching Protocols to %q, not the %q asked for", clip(got), upgrade)
			}
			r.Body, r.Close = &Body{br: br, done: true}, true
			return r, true, nil
		}
		if r.Status < 200 {
			if interim != nil {
				interim(r.Status)
			}
			continue
		}
		return r, false, r.setBody(br, method)
	}
}

func readHead(br *bufio.Reader) (*Response, error) {
	budget := MaxHeadBytes
	line, err := readLine(br, &budget)
	if err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("h1: the server closed the connection before answering: %w", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || (proto != "HTTP/1.1" && proto != "HTTP/1.0") {
		return nil, malformed("status line %q", clip(line))
	}
	code, reason, _ := strings.Cut(rest, " ")
	if len(code) != 3 || code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
		return nil, malformed("status code in %q", clip(line))
	}
	status, _ := strconv.Atoi(code)
	r := &Response{Status: status, Reason: reason, Header: Header{}, Close: proto == "HTTP/1.0"}
	if r.Header, err = readFields(br, &budget); err != nil {
		return nil, err
	}
	if conn := strings.ToLower(r.Header.Get("Connection")); conn != "" {
		for _, t := range strings.Split(conn, ",") {
			switch strings.TrimSpace(t) {
			case "close":
				r.Close = true
			case "keep-alive":
				if proto == "HTTP/1.0" {
					r.Close = false
				}
			}
		}
	}
	return r, nil
}

// readFields reads header fields up to the empty line.
func readFields(br *bufio.Reader, budget *int) (Header, error) {
	h := Header{}
	n := 0
	for {
		line, err := readLine(br, budget)
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("h1: the answer's head ended early: %w", io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		if line == "" {
			return h, nil
		}
		if n++; n > maxFields {
			return nil, malformed("more than %d header fields", maxFields)
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || !validToken(k) {
			return nil, malformed("header line %q", clip(line))
		}
		v = strings.Trim(v, " \t")
		for i := 0; i < len(v); i++ {
			if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
				return nil, malformed("control byte in header field %s", k)
			}
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		h[ck] = append(h[ck], v)
	}
}

// readLine reads one CRLF-ended line (a bare LF is refused), counting
// its bytes against budget.
func readLine(br *bufio.Reader, budget *int) (string, error) {
	var b []byte
	for {
		frag, err := br.ReadSlice('\n')
		*budget -= len(frag)
		if *budget < 0 {
			return "", malformed("head longer than %d bytes", MaxHeadBytes)
		}
		b = append(b, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				return "", fmt.Errorf("h1: the answer ended inside a line: %w", io.ErrUnexpectedEOF)
			}
			return "", err
		}
		if len(b) < 2 || b[len(b)-2] != '\r' {
			return "", malformed("line without CRLF: %q", clip(string(b)))
		}
		return string(b[:len(b)-2]), nil
	}
}

func (r *Response) setBody(br *bufio.Reader, method string) error {
	te := r.Header["Transfer-Encoding"]
	cls := r.Header["Content-Length"]
	body := &Body{br: br, remaining: -1}
	r.Body = body
	if method == "HEAD" || r.Status == 204 || r.Status == 304 {
		body.done = true
		return nil
	}
	switch {
	case len(te) > 0 && len(cls) > 0:
		return malformed("both Transfer-Encoding and Content-Length")
	case len(te) > 0:
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return malformed("transfer coding %q (only chunked is read)", clip(strings.Join(te, ", ")))
		}
		body.chunked = true
	case len(cls) > 0:
		n, err := parseLength(cls[0])
		if err != nil {
			return err
		}
		for _, v := range cls[1:] {
			if v != cls[0] {
				return malformed("unequal Content-Length fields %q and %q", clip(cls[0]), clip(v))
			}
		}
		body.remaining = n
		body.done = n == 0
	default:
		// The body ends with the connection.
		r.Close = true
		body.untilClose = true
	}
	return nil
}

func parseLength(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, malformed("Content-Length %q", clip(s))
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, malformed("Content-Length %q", clip(s))
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, nil
}

// Body reads an answer's body off the connection's reader.
type Body struct {
	br         *bufio.Reader
	remaining  int64 // of the body (Content-Length) or the chunk; -1: none yet
	chunked    bool
	untilClose bool
	done       bool
	err        error
}

func (b *Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := b.read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *Body) read(p []byte) (int, error) {
	switch {
	case b.untilClose:
		n, err := b.br.Read(p)
		if err == io.EOF {
			b.done = true
		}
		return n, err
	case !b.chunked:
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err := b.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.done = true
			return n, nil
		}
		if err == io.EOF {
			return n, fmt.Errorf("h1: the answer's body ended %d bytes early: %w", b.remaining, io.ErrUnexpectedEOF)
		}
		return n, err
	}
	if b.remaining <= 0 {
		if b.remaining == 0 {
			if err := b.crlf(); err != nil {
				return 0, err
			}
		}
		size, err := b.chunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			budget := MaxHeadBytes
			if _, err := readFields(b.br, &budget); err != nil { // trailers, dropped
				return 0, err
			}
			b.done = true
			return 0, io.EOF
		}
		b.remaining = size
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	if err == io.EOF {
		return n, fmt.Errorf("h1: the answer's body ended inside a chunk: %w", io.ErrUnexpectedEOF)
	}
	return n, err
}

// crlf reads the CRLF that ends a chunk's data.
func (b *Body) crlf() error {
	var two [2]byte
	if _, err := io.ReadFull(b.br, two[:]); err != nil {
		return fmt.Errorf("h1: the answer's body ended after a chunk: %w", io.ErrUnexpectedEOF)
	}
	if two != [2]byte{'\r', '\n'} {
		return malformed("chunk not followed by CRLF")
	}
	return nil
}

// chunkSize reads a chunk's size line; extensions are dropped.
func (b *Body) chunkSize() (int64, error) {
	const maxLine = 4096
	budget := maxLine
	line, err := readLine(b.br, &budget)
	if err != nil {
		if budget < 0 { // readLine's error speaks of the head
			return 0, malformed("chunk size line longer than %d bytes", maxLine)
		}
		if err == io.EOF {
			err = fmt.Errorf("h1: the answer's body ended before its last chunk: %w", io.ErrUnexpectedEOF)
		}
		return 0, err
	}
	hex, _, _ := strings.Cut(line, ";")
	hex = strings.TrimRight(hex, " \t")
	if hex == "" || len(hex) > 15 {
		return 0, malformed("chunk size %q", clip(line))
	}
	n, err := strconv.ParseInt(hex, 16, 64)
	if err != nil || hex[0] == '+' || hex[0] == '-' {
		return 0, malformed("chunk size %q", clip(line))
	}
	return n, nil
}

// validToken reports whether s is an RFC 9110 token (a method or a
// field name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// clip shortens what a server sent for an error of one line (%q quotes
// it).
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}
