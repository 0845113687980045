package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// TestTransferErrorNamesTheParty: an error the transfer's peer answered
// (b refusing the key) comes back marked as the peer's, with its kind; an
// error of the node asked (a has no such dot) does not.
func TestTransferErrorNamesTheParty(t *testing.T) {
	ctx := context.Background()
	a, b := servertest.Start(t), servertest.Start(t)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	_, err := a.Node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	noErr(t, err)
	p, err := a.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	noErr(t, err)
	must(t, os.WriteFile(filepath.Join(p, "f"), []byte("x"), 0o644))
	_, err = a.Node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", Author: "t"})
	noErr(t, err)
	ca, err := client.New(a.URL, "", a.Key)
	noErr(t, err)

	req := api.TransferRequest{Op: "push", Dot: "app", Remote: api.TransferRemote{Name: "b", URL: b.URL, APIKey: "wrong"}}
	_, err = ca.Transfer(ctx, req, nil)
	var re *api.RemoteError
	if !errors.As(err, &re) || !re.Peer || !errors.Is(err, dotmesh.ErrUnauthorized) {
		t.Fatalf("b refused the key: %#v", err)
	}

	req = api.TransferRequest{Op: "push", Dot: "nope", Remote: api.TransferRemote{Name: "b", URL: b.URL, APIKey: b.Key}}
	_, err = ca.Transfer(ctx, req, nil)
	if !errors.As(err, &re) || re.Peer || !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("a lacks the dot: %#v", err)
	}
}
