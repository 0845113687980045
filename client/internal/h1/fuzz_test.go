package h1_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/client/internal/h1"
)

// FuzzReadResponse: any bytes give an answer or an error of one line,
// never a panic; an answer that h1 accepts with a whole body, net/http
// reads the same way.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 500 x\r\n\r\nuntil close",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		interim := 0
		resp, err := h1.ReadResponse(bufio.NewReader(bytes.NewReader(data)), "GET", func(int) { interim++ })
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
		}
		if err != nil {
			checkReadError(t, err)
			return
		}
		if resp.Status < 200 || resp.Status > 599 {
			t.Fatalf("final status %d", resp.Status)
		}
		if cl := resp.Header.Get("Content-Length"); cl != "" && resp.Status != 204 && resp.Status != 304 {
			if n, _ := strconv.Atoi(cl); n != len(body) {
				t.Fatalf("Content-Length %s but %d bytes", cl, len(body))
			}
		}
		// net/http, reading the same bytes, finds the same status and
		// body when it accepts them (it is laxer: bare LFs and the like).
		if interim > 0 {
			return // http.ReadResponse returns the 1xx itself
		}
		hr, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if herr != nil {
			return
		}
		hb, herr := io.ReadAll(hr.Body)
		if herr == nil && (hr.StatusCode != resp.Status || !bytes.Equal(hb, body)) {
			t.Fatalf("net/http reads %d %q, h1 %d %q", hr.StatusCode, hb, resp.Status, body)
		}
	})
}

// FuzzReadUpgrade: any bytes give an upgrade, an answer or a one-line
// error; an upgrade is a 101 naming the protocol asked for and leaves
// every byte after its head unread; anything else reads as
// ReadResponse reads it.
func FuzzReadUpgrade(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: dotmesh-direct\r\n\r\nstream",
		"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: DOTMESH-DIRECT\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
		"HTTP/1.1 409 Conflict\r\nContent-Length: 4\r\n\r\nbusy",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		resp, up, err := h1.ReadUpgrade(br, "POST", "dotmesh-direct", nil)
		if err != nil {
			checkReadError(t, err)
			return
		}
		if up {
			if resp.Status != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "dotmesh-direct") || resp.Reusable() {
				t.Fatalf("upgrade with %d %q reusable=%v", resp.Status, resp.Header.Get("Upgrade"), resp.Reusable())
			}
			rest, _ := io.ReadAll(br)
			if !bytes.HasSuffix(data, rest) || !bytes.Contains(data[:len(data)-len(rest)], []byte("\r\n\r\n")) {
				t.Fatalf("after the upgrade %q is left of %q", rest, data)
			}
			return
		}
		if resp.Status < 200 {
			t.Fatalf("final status %d", resp.Status)
		}
		want, werr := h1.ReadResponse(bufio.NewReader(bytes.NewReader(data)), "POST", nil)
		if werr != nil || want.Status != resp.Status {
			t.Fatalf("ReadUpgrade read %d, ReadResponse %v %v", resp.Status, want, werr)
		}
	})
}

// checkReadError: a refused answer is one line, of one of the two kinds.
func checkReadError(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error of more than one line: %q", err)
	}
	if !errors.Is(err, h1.ErrMalformed) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("error %v is neither ErrMalformed nor io.ErrUnexpectedEOF", err)
	}
}
