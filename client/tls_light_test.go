//go:build dmlight

package client_test

import (
	"errors"
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The light client has no TLS: an https node or a CA is refused with
// ErrNoTLS (the light dm then hands the command to dm-node), a plain
// http one is not.
func TestLightRefusesTLS(t *testing.T) {
	if client.HasTLS {
		t.Fatal("the light client says it has TLS")
	}
	for _, opts := range [][]client.Option{nil, {client.WithCACert([]byte("pem"))}} {
		if _, err := client.New("https://h", "", "k", opts...); !errors.Is(err, client.ErrNoTLS) || !errors.Is(err, dotmesh.ErrNotSupported) {
			t.Errorf("New(https, %d options): %v", len(opts), err)
		}
	}
	if _, err := client.New("http://h", "", "k", client.WithCACert([]byte("pem"))); !errors.Is(err, client.ErrNoTLS) {
		t.Errorf("New(http, a CA): %v", err)
	}
	if _, err := client.New("http://h", "", "k"); err != nil {
		t.Errorf("New(http): %v", err)
	}
	if err := client.CheckCACert([]byte("pem")); !errors.Is(err, client.ErrNoTLS) {
		t.Errorf("CheckCACert: %v", err)
	}
}
