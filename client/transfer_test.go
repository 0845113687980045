package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// TestTransferOverHTTP runs a push between two served nodes the way the
// CLI does (POST /v1/transfers to the sender), then a pull with the client
// as the Transport of a Node, and checks a wrong key changes nothing.
func TestTransferOverHTTP(t *testing.T) {
	ctx := context.Background()
	a, b := servertest.Start(t), servertest.Start(t)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	_, err := a.Node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	noErr(t, err)
	p, err := a.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	noErr(t, err)
	must(t, os.WriteFile(filepath.Join(p, "f"), []byte(strings.Repeat("x", 3<<20)), 0o644))
	_, err = a.Node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", Author: "t"})
	noErr(t, err)

	ca, err := client.New(a.URL, "", a.Key)
	noErr(t, err)
	req := api.TransferRequest{Op: "push", Dot: "app", Remote: api.TransferRemote{Name: "b", URL: b.URL, APIKey: "wrong"}}
	_, err = ca.Transfer(ctx, req, nil)
	if !errors.Is(err, dotmesh.ErrUnauthorized) {
		t.Fatalf("push with a wrong key: %v", err)
	}
	if st, err := b.Node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{}); err != nil || st.Exists || len(st.Have) > 0 {
		t.Fatalf("b changed after a refused push: %+v %v", st, err)
	}

	req.Remote.APIKey = b.Key
	var events int
	res, err := ca.Transfer(ctx, req, func(dotmesh.Progress) { events++ })
	noErr(t, err)
	if res.Commits != 1 || res.Bytes == 0 {
		t.Fatalf("push: %+v", res)
	}
	d, err := a.Node.Dot(ctx, app)
	noErr(t, err)
	if d.Upstreams["b"] != "app" {
		t.Fatalf("upstream not recorded: %v", d.Upstreams)
	}

	// Pull back into a third node with the client as Transport.
	c := servertest.Start(t)
	cb, err := client.New(b.URL, "", b.Key)
	noErr(t, err)
	res, err = c.Node.Clone(ctx, app, "", cb, dotmesh.TransferOptions{})
	noErr(t, err)
	if res.Commits != 1 {
		t.Fatalf("clone: %+v", res)
	}
	log, err := c.Node.Log(ctx, app, "", 0)
	noErr(t, err)
	if len(log) != 1 || log[0].Message != "one" {
		t.Fatalf("clone log: %+v", log)
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestStateSkipUsageOverHTTP: StateOptions.SkipUsage travels to the node
// (as api.SkipUsageHeader), which then leaves Usage zero; without it the
// node reports its uncommitted changes. BriefHistory travels the same way.
func TestStateSkipUsageOverHTTP(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	_, err := n.Node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	noErr(t, err)
	p, err := n.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	noErr(t, err)
	must(t, os.WriteFile(filepath.Join(p, "f"), []byte("one"), 0o644))
	_, err = n.Node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", Author: "t"})
	noErr(t, err)
	must(t, os.WriteFile(filepath.Join(p, "g"), []byte("uncommitted"), 0o644))

	c, err := client.New(n.URL, "", n.Key)
	noErr(t, err)
	st, err := c.State(ctx, app, "master", dotmesh.StateOptions{})
	noErr(t, err)
	if !st.Usage.Dirty || st.Usage.DirtyBytes == 0 {
		t.Fatalf("usage without SkipUsage: %+v", st.Usage)
	}
	st, err = c.State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true})
	noErr(t, err)
	if st.Usage != (dotmesh.Usage{}) || len(st.History) != 1 || st.History[0].Message != "one" {
		t.Fatalf("with SkipUsage: usage %+v, history %+v", st.Usage, st.History)
	}

	// BriefHistory travels too (api.BriefHistoryHeader): ids, no messages.
	st, err = c.State(ctx, app, "master", dotmesh.StateOptions{BriefHistory: true})
	noErr(t, err)
	if !st.Usage.Dirty || len(st.History) != 1 || !reflect.DeepEqual(st.History[0], dotmesh.Commit{ID: st.Branch.Head}) {
		t.Fatalf("with BriefHistory: usage %+v, history %+v", st.Usage, st.History)
	}
}
