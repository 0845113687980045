//go:build !linux || !cgo

package btrfs

import (
	"context"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Backend is unavailable in this build: btrfs support needs Linux and cgo.
type Backend struct{}

var _ dotmesh.StorageBackend = (*Backend)(nil)

var errNoBtrfs = fmt.Errorf("%w: this binary was built without btrfs support (it needs linux and cgo: build with CGO_ENABLED=1 and linux-libc-dev installed)", dotmesh.ErrNotSupported)

// Guarded is what Open returns in builds with btrfs support.
type Guarded = Backend

// Open always fails in this build.
func Open(ctx context.Context, opts Options) (*Guarded, error) { return nil, errNoBtrfs }

func (b *Backend) Name() string { return Name }
func (b *Backend) CreateBranch(context.Context, dotmesh.BranchRef, *dotmesh.CommitRef) error {
	return errNoBtrfs
}
func (b *Backend) DeleteBranch(context.Context, dotmesh.BranchRef) error { return errNoBtrfs }
func (b *Backend) Branches(context.Context) ([]dotmesh.BranchRef, error) {
	return nil, errNoBtrfs
}
func (b *Backend) SubdotPath(context.Context, dotmesh.BranchRef, string) (string, error) {
	return "", errNoBtrfs
}
func (b *Backend) Subdots(context.Context, dotmesh.BranchRef) ([]string, error) {
	return nil, errNoBtrfs
}
func (b *Backend) Usage(context.Context, dotmesh.BranchRef, *dotmesh.CommitRef) (dotmesh.Usage, error) {
	return dotmesh.Usage{}, errNoBtrfs
}
func (b *Backend) Commit(context.Context, dotmesh.CommitRef) (map[string]string, error) {
	return nil, errNoBtrfs
}
func (b *Backend) Commits(context.Context, dotmesh.BranchRef) ([]dotmesh.CommitID, error) {
	return nil, errNoBtrfs
}
func (b *Backend) Rollback(context.Context, dotmesh.BranchRef, dotmesh.CommitRef) error {
	return errNoBtrfs
}
func (b *Backend) DeleteCommit(context.Context, dotmesh.CommitRef) error { return errNoBtrfs }
func (b *Backend) Send(context.Context, dotmesh.CommitRef, *dotmesh.CommitRef, io.Writer) error {
	return errNoBtrfs
}
func (b *Backend) Receive(context.Context, dotmesh.CommitRef, *dotmesh.CommitRef, io.Reader) error {
	return errNoBtrfs
}
func (b *Backend) Close() error { return nil }
