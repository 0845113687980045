package h1_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/dotmesh-io/dotmesh/client/internal/h1"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// conn dials addr ("127.0.0.1:port" or an http:// URL) for one test.
func conn(t *testing.T, addr string) (net.Conn, *bufio.Reader, *bufio.Writer) {
	t.Helper()
	addr = strings.TrimPrefix(addr, "http://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c), bufio.NewWriter(c)
}

func roundTrip(t *testing.T, br *bufio.Reader, bw *bufio.Writer, req *h1.Request) (*h1.Response, []byte) {
	t.Helper()
	if err := h1.WriteRequest(bw, req); err != nil {
		t.Fatalf("WriteRequest: %v", err)
	}
	resp, err := h1.ReadResponse(br, req.Method, nil)
	if err != nil {
		t.Fatalf("ReadResponse: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, body
}

// A real node: ping, create a dot with a JSON body, commit it, list the
// dots, all on one kept connection, then an error answer.
func TestNode(t *testing.T) {
	n := servertest.Start(t)
	_, br, bw := conn(t, n.URL)
	auth := h1.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+n.Key))}, "Accept": {"application/json"}}
	post := func(target, body string) (*h1.Response, []byte) {
		h := h1.Header{"Content-Type": {"application/json"}}
		for k, v := range auth {
			h[k] = v
		}
		return roundTrip(t, br, bw, &h1.Request{Method: "POST", Target: target, Host: "node", Header: h, Body: strings.NewReader(body), ContentLength: int64(len(body))})
	}
	resp, body := roundTrip(t, br, bw, &h1.Request{Method: "GET", Target: "/v1/ping", Host: "node", Header: auth})
	if resp.Status != 200 || !resp.Reusable() {
		t.Fatalf("ping: %d reusable=%v %s", resp.Status, resp.Reusable(), body)
	}
	if resp, body = post("/v1/dots", `{"name":"app"}`); resp.Status/100 != 2 || !resp.Reusable() {
		t.Fatalf("create: %d %s", resp.Status, body)
	}
	if resp, body = post("/v1/dots/admin/app/commits", `{"message":"one","allow_empty":true}`); resp.Status/100 != 2 || !resp.Reusable() {
		t.Fatalf("commit: %d %s", resp.Status, body)
	}
	resp, body = roundTrip(t, br, bw, &h1.Request{Method: "GET", Target: "/v1/dots", Host: "node", Header: auth})
	if resp.Status != 200 || !bytes.Contains(body, []byte(`"app"`)) {
		t.Fatalf("list: %d %s", resp.Status, body)
	}
	resp, body = roundTrip(t, br, bw, &h1.Request{Method: "GET", Target: "/v1/dots/admin/nosuch", Host: "node", Header: auth})
	var e struct{ Code string }
	if resp.Status != 404 || json.Unmarshal(body, &e) != nil || e.Code != "not_found" {
		t.Fatalf("missing dot: %d %s", resp.Status, body)
	}
}

// Chunked bodies both ways, with extensions and trailers, the request's
// body streamed in small reads.
func TestChunked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err := io.ReadAll(r.Body)
		if err != nil || r.ContentLength != -1 || len(r.TransferEncoding) != 1 {
			http.Error(w, "bad request body", 400)
			return
		}
		w.Header().Set("Trailer", "X-Sum")
		for i := 0; i < 3; i++ {
			w.Write(got)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "3")
	}))
	defer srv.Close()
	_, br, bw := conn(t, srv.URL)
	for i := 0; i < 2; i++ { // twice: the connection is kept
		want := strings.Repeat("abc", 20000)
		resp, body := roundTrip(t, br, bw, &h1.Request{Method: "POST", Target: "/x", Host: "h", Body: iotest.HalfReader(strings.NewReader(want)), ContentLength: -1})
		if resp.Status != 200 || string(body) != strings.Repeat(want, 3) || !resp.Reusable() {
			t.Fatalf("round %d: %d reusable=%v, %d bytes", i, resp.Status, resp.Reusable(), len(body))
		}
	}
}

// A node's 102 Processing answers are skipped and reported.
func TestInterim(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusProcessing)
		w.WriteHeader(http.StatusProcessing)
		w.Write([]byte("done"))
	}))
	defer srv.Close()
	_, br, bw := conn(t, srv.URL)
	if err := h1.WriteRequest(bw, &h1.Request{Method: "GET", Target: "/", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	var seen []int
	resp, err := h1.ReadResponse(br, "GET", func(s int) { seen = append(seen, s) })
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.Status != 200 || string(body) != "done" || len(seen) != 2 || seen[0] != 102 {
		t.Fatalf("status %d body %q interim %v", resp.Status, body, seen)
	}
}

// A server that refuses a body before reading it (417 to an Expect, 413)
// is read as its answer; Connection: close makes the connection unusable.
func TestRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "too big", http.StatusRequestEntityTooLarge)
	}))
	defer srv.Close()
	_, br, bw := conn(t, srv.URL)
	resp, body := roundTrip(t, br, bw, &h1.Request{Method: "PUT", Target: "/", Host: "h", Body: strings.NewReader("x"), ContentLength: 1})
	if resp.Status != 413 || strings.TrimSpace(string(body)) != "too big" || resp.Reusable() {
		t.Fatalf("%d %q reusable=%v", resp.Status, body, resp.Reusable())
	}
	// httptest's own: a 100 Continue before a final answer is skipped.
	answer := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"
	resp, err := h1.ReadResponse(bufio.NewReader(strings.NewReader(answer)), "PUT", nil)
	if err != nil || resp.Status != 417 || !resp.Reusable() {
		t.Fatalf("%v %+v", err, resp)
	}
}

// raw serves one connection with answer, after reading the request's head.
func raw(t *testing.T, answer string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		io.WriteString(c, answer)
	}()
	return l.Addr().String()
}

// Early closes and malformed or oversized heads are one-line errors.
func TestBadAnswers(t *testing.T) {
	cases := []struct{ name, answer, want string }{
		{"nothing", "", "closed the connection before answering"},
		{"head cut", "HTTP/1.1 200 OK\r\nContent-Le", "ended inside a line"},
		{"body cut", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "ended 7 bytes early"},
		{"chunk cut", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc", "ended inside a chunk"},
		{"no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", "ended before its last chunk"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"},
		{"long chunk size line", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;" + strings.Repeat("x", 5000) + "\r\nabc\r\n0\r\n\r\n", "chunk size line longer than"},
		{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", "not followed by CRLF"},
		{"both lengths", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "both Transfer-Encoding and Content-Length"},
		{"unequal lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "unequal Content-Length"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", "Content-Length"},
		{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "transfer coding"},
		{"http2", "HTTP/2 200\r\n\r\n", "status line"},
		{"status", "HTTP/1.1 20x OK\r\n\r\n", "status code"},
		{"bare LF", "HTTP/1.1 200 OK\n\n", "without CRLF"},
		{"field", "HTTP/1.1 200 OK\r\nBad Field: x\r\n\r\n", "header line"},
		{"switch", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"},
		{"oversized", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", h1.MaxHeadBytes) + "\r\n\r\n", "head longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, br, bw := conn(t, raw(t, tc.answer))
			if err := h1.WriteRequest(bw, &h1.Request{Method: "GET", Target: "/", Host: "h"}); err != nil {
				t.Fatal(err)
			}
			resp, err := h1.ReadResponse(br, "GET", nil)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v, want one line with %q", err, tc.want)
			}
			if strings.Contains(tc.want, "early") || strings.Contains(tc.want, "ended") || strings.Contains(tc.want, "closed") {
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("%v is not io.ErrUnexpectedEOF", err)
				}
			} else if !errors.Is(err, h1.ErrMalformed) {
				t.Errorf("%v is not ErrMalformed", err)
			}
		})
	}
}

// An answer without a length ends with the connection, which then cannot
// be reused; HTTP/1.0 closes unless kept alive.
func TestUntilClose(t *testing.T) {
	_, br, bw := conn(t, raw(t, "HTTP/1.0 200 OK\r\n\r\nall of it"))
	resp, body := roundTrip(t, br, bw, &h1.Request{Method: "GET", Target: "/", Host: "h"})
	if string(body) != "all of it" || resp.Reusable() {
		t.Fatalf("%q reusable=%v", body, resp.Reusable())
	}
	resp, err := h1.ReadResponse(bufio.NewReader(strings.NewReader("HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n")), "GET", nil)
	if err != nil || !resp.Reusable() {
		t.Fatalf("%v %+v", err, resp)
	}
}

// Requests that would be ambiguous on the wire are refused before a byte
// is written.
func TestBadRequests(t *testing.T) {
	for _, r := range []h1.Request{
		{Method: "GE T", Target: "/", Host: "h"},
		{Method: "GET", Target: "x", Host: "h"},
		{Method: "GET", Target: "/a b", Host: "h"},
		{Method: "GET", Target: "/", Host: ""},
		{Method: "GET", Target: "/", Host: "h", Header: h1.Header{"X": {"a\r\nY: b"}}},
		{Method: "GET", Target: "/", Host: "h", Header: h1.Header{"Content-Length": {"3"}}},
		{Method: "POST", Target: "/", Host: "h", Body: strings.NewReader("ab"), ContentLength: 3},
	} {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := h1.WriteRequest(w, &r); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: error %v", r, err)
		}
		if out.Len() != 0 && r.Body == nil {
			t.Errorf("%+v: wrote %q", r, out.String())
		}
		// Nor left for the connection's next request to carry.
		if w.Buffered() != 0 && r.Body == nil {
			t.Errorf("%+v: left %d bytes buffered", r, w.Buffered())
		}
	}
}

// ReadUpgrade: a 101 naming the protocol asked for ends the exchange with
// the next bytes left in the reader; a 101 naming another is refused; a
// refusal (any final answer) is read as ReadResponse reads it.
func TestReadUpgrade(t *testing.T) {
	read := func(s string) (*h1.Response, bool, *bufio.Reader, error) {
		br := bufio.NewReader(strings.NewReader(s))
		r, up, err := h1.ReadUpgrade(br, "POST", "dotmesh-direct", nil)
		return r, up, br, err
	}
	r, up, br, err := read("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: Dotmesh-Direct\r\n\r\nafter")
	if err != nil || !up || r.Status != 101 || r.Reusable() {
		t.Fatalf("upgrade: %v %v %+v", err, up, r)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "after" {
		t.Fatalf("bytes after the 101: %q", rest)
	}
	if b, err := io.ReadAll(r.Body); err != nil || len(b) != 0 {
		t.Fatalf("the 101's body: %q %v", b, err)
	}
	if _, up, _, err = read("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"); err == nil || up || !errors.Is(err, h1.ErrMalformed) || !strings.Contains(err.Error(), `"websocket"`) {
		t.Fatalf("another protocol: %v %v", err, up)
	}
	r, up, _, err = read("HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno")
	if err != nil || up || r.Status != 400 {
		t.Fatalf("refused: %v %v %+v", err, up, r)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != "no" {
		t.Fatalf("refusal's body %q", b)
	}
}
