package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestResolveClusterSettings(t *testing.T) {
	dir := t.TempDir()
	s, err := resolveClusterSettings(Config{}, dir, "127.0.0.1:32607")
	if err != nil || s.Store != StoreBBolt || s.etcd() {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	if _, err := resolveClusterSettings(Config{NodeID: "n1"}, dir, "127.0.0.1:1"); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("cluster flags without --store etcd: %v", err)
	}
	if _, err := resolveClusterSettings(Config{Store: "zookeeper"}, dir, "127.0.0.1:1"); err == nil {
		t.Fatal("unknown store accepted")
	}
	if _, err := resolveClusterSettings(Config{Store: "etcd"}, dir, "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "--etcd-endpoints") {
		t.Fatalf("etcd without endpoints: %v", err)
	}
	if _, err := resolveClusterSettings(Config{Store: "etcd", EtcdEndpoints: []string{"http://e:2379"}, NodeID: "n1"}, dir, "0.0.0.0:32607"); err == nil || !strings.Contains(err.Error(), "--advertise") {
		t.Fatalf("unspecified listen address without --advertise: %v", err)
	}
	if _, err := resolveClusterSettings(Config{Store: "etcd", EtcdEndpoints: []string{"http://e:2379"}, NodeID: "a/b"}, dir, "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "--node-id") {
		t.Fatalf("bad node id: %v", err)
	}

	cfg := Config{Store: "etcd", EtcdEndpoints: []string{"http://e:2379"}, NodeID: "n1", TLSCert: "c", EtcdCAFile: "ca.pem"}
	s, err = resolveClusterSettings(cfg, dir, "10.0.0.1:32607")
	if err != nil || s.Advertise != "https://10.0.0.1:32607" || !strings.HasPrefix(s.EtcdCAFile, "/") {
		t.Fatalf("etcd: %+v %v", s, err)
	}
	if err := s.save(dir); err != nil {
		t.Fatal(err)
	}
	// A restart needs no flags.
	again, err := resolveClusterSettings(Config{}, dir, "10.0.0.1:32607")
	if err != nil || again.NodeID != "n1" || again.Advertise != s.Advertise || len(again.EtcdEndpoints) != 1 || !again.etcd() {
		t.Fatalf("remembered: %+v %v", again, err)
	}
	// The node keeps its id and its store.
	if _, err := resolveClusterSettings(Config{NodeID: "n2"}, dir, "10.0.0.1:32607"); err == nil || !strings.Contains(err.Error(), "node n1") {
		t.Fatalf("changed node id: %v", err)
	}
	if _, err := resolveClusterSettings(Config{Store: "bbolt"}, dir, "10.0.0.1:32607"); err == nil {
		t.Fatal("a cluster node's data directory moved to bbolt")
	}
}
