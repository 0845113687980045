package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// TestMounts drives POST and DELETE /v1/mounts as the FlexVolume driver
// does: repeat-safe both ways, and found by consumer and id alone.
func TestMounts(t *testing.T) {
	ctx := context.Background()
	n := servertest.Start(t)
	c := newClient(t, n)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	req := api.MountRequest{Volume: "app.db", Consumer: "flex", ID: "/var/lib/kubelet/pods/1/volumes/x", Name: "pod a/b"}
	if _, err := c.Mount(ctx, req); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("mounting a missing dot: %v; want ErrNotFound", err)
	}
	must(c.CreateDot(ctx, app, ""))
	m1 := must(c.Mount(ctx, req))
	m2 := must(c.Mount(ctx, req))
	if m1.Path == "" || m1.Path != m2.Path || m1.Subdot != "db" || m1.Name != "pod a/b" {
		t.Fatalf("mounts %+v and %+v", m1, m2)
	}
	if err := c.DeleteDot(ctx, app); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("deleting a mounted dot: %v; want ErrInUse", err)
	}
	for i := 0; i < 2; i++ {
		if err := c.Unmount(ctx, api.UnmountRequest{Consumer: "flex", ID: req.ID}); err != nil {
			t.Fatalf("unmount #%d: %v", i+1, err)
		}
	}
	if ms := must(n.Node.Mounts().List(ctx, app)); len(ms) != 0 {
		t.Fatalf("mounts left: %+v", ms)
	}
	for _, bad := range []api.MountRequest{
		{Volume: "app/../x", Consumer: "flex", ID: "/x"},
		{Volume: "app", Consumer: "fl ex", ID: "/x"},
		{Volume: "app", Consumer: "flex", ID: ""},
	} {
		if _, err := c.Mount(ctx, bad); !errors.Is(err, dotmesh.ErrInvalidName) && !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("Mount(%+v): %v; want a name or argument error", bad, err)
		}
	}
	if err := c.Unmount(ctx, api.UnmountRequest{Volume: "app", Consumer: "", ID: "/x"}); !errors.Is(err, dotmesh.ErrInvalidName) {
		t.Errorf("Unmount without consumer: %v", err)
	}
	must(0, c.DeleteDot(ctx, app))
}
