package csi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	plugin "github.com/dotmesh-io/dotmesh/frontends/csi"
)

// A second plugin on the socket of a live one is refused, naming the
// socket and --csi-socket, and the live one keeps serving on it.
func TestLiveSocketNotTakenOver(t *testing.T) {
	socket, node := startPlugin(t)
	srv, err := plugin.New(plugin.Options{Node: node, NodeID: "other-node", Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.ListenAndServe(ctx, socket)
	if !errors.Is(err, dotmesh.ErrInUse) || !strings.Contains(err.Error(), socket) || !strings.Contains(err.Error(), "--csi-socket") {
		t.Fatalf("second plugin on a live socket: %v", err)
	}
	info, err := dial(t, socket).node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil || info.NodeId != "test-node" {
		t.Fatalf("the live plugin after the refused one: %v %v", info, err)
	}
}
