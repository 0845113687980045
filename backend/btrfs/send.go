//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/backend/framing"
	"github.com/dotmesh-io/dotmesh/backend/internal/durable"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Send implements dotmesh.StorageBackend: `btrfs send [-p base]` of the
// commit's snapshot, framed with a checksum trailer (see frame.go). The
// trailer is written only when btrfs send succeeded, so a failed send
// reaches the receiver as a truncated stream. Commits on the branch are
// not blocked while a stream is being sent.
func (b *Backend) Send(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, w io.Writer) error {
	if err := b.needCommit(target); err != nil {
		return err
	}
	h := framing.Header{Target: target.ID}
	parent := ""
	if base != nil {
		if err := b.needCommit(*base); err != nil {
			return fmt.Errorf("send %s incrementally: base: %w", target, err)
		}
		h.Base, parent = base.ID, b.snapPath(*base)
	}
	fw, err := streamFormat.NewWriter(w, h)
	if err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	if err := btrfsSend(ctx, b.snapPath(target), parent, fw); err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("send %s: %w", target, err)
	}
	return nil
}

// Receive implements dotmesh.StorageBackend. `btrfs receive` writes into
// a staging directory commits/.recv-* of the target branch; only when the
// trailer checked out, btrfs receive succeeded and the subvolume is
// read-only with a received UUID is it renamed to "snap" and its staging
// directory to the commit id, one atomic rename. (Read-only subvolumes
// cannot move between directories, hence staging beside the commits.)
// Anything else removes the staging directory; a crash leaves it for
// Open to remove, so a retry starts clean. The branch gets no working
// state: CreateBranch from the received commit makes one.
func (b *Backend) Receive(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, r io.Reader) error {
	if ok, err := exists(b.snapPath(target)); err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	} else if ok {
		return fmt.Errorf("%w: commit %s is already stored here", dotmesh.ErrAlreadyExists, target)
	}
	if base != nil {
		if err := b.needCommit(*base); err != nil {
			return fmt.Errorf("receive %s incrementally: base: %w", target, err)
		}
	}
	hdr, fr, err := streamFormat.NewReader(r)
	if err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	if hdr.Target != target.ID {
		return fmt.Errorf("%w: the stream carries commit %s, not %s", dotmesh.ErrInvalidArgument, hdr.Target, target.ID)
	}
	if hdr.Base != "" && (base == nil || base.ID != hdr.Base) {
		return fmt.Errorf("%w: the stream of %s is incremental from %s, which the receive did not name as its base", dotmesh.ErrInvalidArgument, target.ID, hdr.Base)
	}
	if err := os.MkdirAll(b.commitsDir(target.BranchRef), 0o755); err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	staging, err := os.MkdirTemp(b.commitsDir(target.BranchRef), ".recv-")
	if err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	published := false
	defer func() {
		if !published {
			if err := removeTree(staging); err != nil {
				b.log.WarnContext(ctx, "cannot remove a failed receive's staging directory; it goes on next open", "path", staging, "err", err)
			}
		}
	}()
	if err := b.receiveInto(ctx, staging, fr); err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	if err := b.publish(staging, target); err != nil {
		return fmt.Errorf("receive %s: %w", target, err)
	}
	published = true
	return nil
}

// receiveInto pipes the payload of fr into btrfs receive in dir.
func (b *Backend) receiveInto(ctx context.Context, dir string, fr *framing.Reader) error {
	rc, err := startReceive(ctx, dir)
	if err != nil {
		return err
	}
	_, err = io.Copy(rc.stdin, fr)
	if ferr := fr.Err(); ferr != nil { // our framing failed: the stream is bad, whatever btrfs says
		rc.abort()
		return ferr
	}
	if err == nil {
		return rc.finish(ctx)
	}
	// btrfs receive stopped reading. If the stream is damaged that is
	// why, and the caller should hear ErrCorrupt: read on (up to a
	// bound) to find out. Otherwise btrfs's own verdict says why.
	rerr := rc.finish(ctx)
	if _, derr := io.Copy(io.Discard, io.LimitReader(fr, drainLimit)); derr != nil && fr.Err() != nil {
		return fr.Err()
	}
	if rerr != nil {
		return rerr
	}
	return err
}

// drainLimit bounds how much of a stream Receive reads after btrfs
// receive gave up, to tell a damaged stream from a local failure.
const drainLimit = 64 << 20

// publish checks the one subvolume btrfs receive made in staging, names it
// "snap", makes it durable and renames staging to the commit's directory.
func (b *Backend) publish(staging string, target dotmesh.CommitRef) error {
	ents, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	if len(ents) != 1 || !ents[0].IsDir() {
		return fmt.Errorf("%w: btrfs receive made %d entries instead of one subvolume", dotmesh.ErrCorrupt, len(ents))
	}
	sub := filepath.Join(staging, ents[0].Name())
	info, err := getSubvolInfo(sub)
	if err != nil {
		return err
	}
	if !info.Readonly || info.ReceivedUUID == "" {
		return fmt.Errorf("%w: the received subvolume is incomplete (read-only %v, received UUID %q)", dotmesh.ErrCorrupt, info.Readonly, info.ReceivedUUID)
	}
	if ents[0].Name() != "snap" {
		if err := os.Rename(sub, filepath.Join(staging, "snap")); err != nil {
			return err
		}
	}
	if err := durable.SyncFS(staging); err != nil {
		return err
	}
	dir := b.commitDir(target)
	if err := removeTree(dir); err != nil { // a snapshot-less leftover
		return err
	}
	if err := os.Rename(staging, dir); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: commit %s appeared while receiving it", dotmesh.ErrAlreadyExists, target)
		}
		return err
	}
	return durable.SyncFS(b.commitsDir(target.BranchRef))
}
