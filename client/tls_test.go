package client_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
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
