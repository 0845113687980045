//go:build !dmlight

// The full build's TLS; the light one has none (tls_light_test.go).

package client_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// WithCACert makes the client trust a node's own CA, and only it.
func TestWithCACert(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"version":"tls","user":"admin"}`))
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	c, err := client.New(srv.URL, "", "key", client.WithCACert(ca))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Ping(context.Background())
	if err != nil || p.Version != "tls" {
		t.Fatalf("ping over TLS: %+v %v", p, err)
	}
	untrusting, _ := client.New(srv.URL, "", "key")
	if _, err := untrusting.Ping(context.Background()); err == nil {
		t.Fatal("a client without the CA trusted the server")
	}
}

func TestNewValidatesTLSOptions(t *testing.T) {
	if _, err := client.New("https://h", "", "k", client.WithCACert([]byte("not pem"))); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("bad CA: %v", err)
	}
	if err := client.CheckCACert([]byte("not pem")); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("CheckCACert of no PEM: %v", err)
	}
	if _, err := client.New("https://h", "", "k", client.WithHTTPClient(http.DefaultClient)); err != nil {
		t.Errorf("WithHTTPClient: %v", err)
	}
}
