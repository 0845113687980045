package client_test

import (
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestPeers(t *testing.T) {
	if _, err := client.NewPeers(""); err == nil {
		t.Fatal("peers without a key")
	}
	p, err := client.NewPeers("k")
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Peer(dotmesh.NodeInfo{ID: "n1", Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.Peer(dotmesh.NodeInfo{ID: "n1", Address: "http://127.0.0.1:1"}); b != a {
		t.Error("the client of an address is not reused")
	}
	if a.(*client.Client).URL() != "http://127.0.0.1:1" {
		t.Errorf("peer URL %s", a.(*client.Client).URL())
	}
	if _, err := p.Peer(dotmesh.NodeInfo{ID: "n2", Address: "ftp://x"}); err == nil {
		t.Error("a peer with a bad address")
	}
	if _, err := client.NewPeers("k", client.WithCACert([]byte("not pem"))); err != nil {
		t.Fatal(err) // checked per peer
	}
}
