package client

import (
	"context"
	"errors"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/internal/unixsock"
)

// The socket is dialed only for plain HTTP to a loopback host, only for
// that host, and TCP takes over for good once it fails. (The calls over
// a node's real socket are daemon's tests.)
func TestLocalDial(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // listening is enough: a connect succeeds into the backlog
	tcpDials := 0
	errTCP := errors.New("dialed TCP")
	tcpDial := func(context.Context, string, string) (net.Conn, error) { tcpDials++; return nil, errTCP }
	o := &options{socket: sock}
	dial := func(base string) (net.Conn, error) {
		t.Helper()
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		sd := newSocketDialer(u, o, tcpDial)
		if sd == nil {
			return nil, errTCP
		}
		host := u.Host
		if u.Port() == "" {
			host += ":80"
		}
		return sd.dial(context.Background(), "tcp", host)
	}
	for _, base := range []string{"http://127.0.0.1:32607", "http://localhost:32607", "http://[::1]:32607", "http://127.0.0.1"} {
		c, err := dial(base)
		if err != nil {
			t.Errorf("%s: %v, want the socket", base, err)
			continue
		}
		if c.RemoteAddr().Network() != "unix" {
			t.Errorf("%s: dialed %s, want the socket", base, c.RemoteAddr().Network())
		}
		c.Close()
	}
	for _, base := range []string{"https://127.0.0.1:32607", "http://10.0.0.1:32607"} {
		u, _ := url.Parse(base)
		if newSocketDialer(u, o, tcpDial) != nil {
			t.Errorf("%s: the socket would be dialed; want TCP only", base)
		}
	}
	if newSocketDialer(&url.URL{Scheme: "http", Host: "127.0.0.1:1"}, &options{socket: "/" + strings.Repeat("d", unixsock.MaxPath)}, tcpDial) != nil {
		t.Error("a socket path too long to dial would be dialed")
	}

	// Another host than the base URL's goes over TCP; a socket that
	// fails sends this call and the next to TCP.
	u, _ := url.Parse("http://127.0.0.1:32607")
	sd := newSocketDialer(u, o, tcpDial)
	if _, err := sd.dial(context.Background(), "tcp", "127.0.0.1:9"); !errors.Is(err, errTCP) {
		t.Errorf("another host: %v, want TCP", err)
	}
	sd.sock = filepath.Join(dir, "missing.sock")
	if _, err := sd.dial(context.Background(), "tcp", "127.0.0.1:32607"); !errors.Is(err, errTCP) {
		t.Errorf("a missing socket: %v, want TCP", err)
	}
	sd.sock = sock
	if _, err := sd.dial(context.Background(), "tcp", "127.0.0.1:32607"); !errors.Is(err, errTCP) {
		t.Errorf("after the socket failed: %v, want TCP", err)
	}
	if tcpDials != 3 {
		t.Errorf("%d TCP dials, want 3", tcpDials)
	}
}
