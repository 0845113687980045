package dotmesh_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// On the files (dump) backend: its file system's capacity, and no size
// bounds (the zfs and btrfs bounds are tested by frontends/csi).
func TestCapacityAndSizesOnFiles(t *testing.T) {
	ctx := context.Background()
	n := newEnv(t).node
	c, err := n.Capacity(ctx, "")
	require.NoError(t, err)
	if c.Backend != "dump" || c.SizeLimits || c.AvailableBytes <= 0 || c.TotalBytes < c.AvailableBytes {
		t.Fatalf("capacity %+v", c)
	}
	if _, err := n.Capacity(ctx, "zfs"); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("capacity of a backend the node does not run: %v", err)
	}

	name := dotmesh.DotName{Namespace: "admin", Name: "sized"}
	_, err = n.CreateDot(ctx, name, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	if err := n.SetBranchSize(ctx, name, "", 1<<20); !errors.Is(err, dotmesh.ErrNotSupported) {
		t.Fatalf("bounding a files branch: %v; want ErrNotSupported", err)
	}
	if _, err := n.BranchSize(ctx, name, ""); !errors.Is(err, dotmesh.ErrNotSupported) {
		t.Fatalf("the bound of a files branch: %v; want ErrNotSupported", err)
	}
	if err := n.SetBranchSize(ctx, name, "", -1); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("a negative size: %v; want ErrInvalidArgument", err)
	}
	if err := n.SetBranchSize(ctx, dotmesh.DotName{Namespace: "admin", Name: "nosuch"}, "", 1); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("a missing dot: %v; want ErrNotFound", err)
	}
}
