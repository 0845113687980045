//go:build !linux || !cgo

package btrfs

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestOpenUnsupported(t *testing.T) {
	_, err := Open(context.Background(), Options{DataDir: t.TempDir()})
	if !errors.Is(err, dotmesh.ErrNotSupported) || !strings.Contains(err.Error(), "built without btrfs support") {
		t.Fatalf("Open in a build without cgo: %v", err)
	}
}
