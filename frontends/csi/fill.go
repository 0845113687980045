package csi

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var timeNow = func() time.Time { return time.Now().UTC() }

// fillFromCommit copies a snapshot's commit into the new dot dst. The
// commit's data is reached through a short-lived branch of the source dot
// made from it; dots stay independent, so deleting the source volume or
// snapshot never touches volumes made from them.
func (s *Server) fillFromCommit(ctx context.Context, snap *snapshotRecord, dst dotmesh.DotName) error {
	v, err := parseVolumeID(snap.Volume)
	if err != nil {
		return err
	}
	tmp := "csi-restore-" + nameKey(dst.String())[:16]
	if err := s.node.DeleteBranch(ctx, v.Dot, tmp); err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
		return fmt.Errorf("removing a leftover restore branch: %w", err)
	}
	if _, err := s.node.CreateBranch(ctx, v.Dot, tmp, string(snap.Commit)); err != nil {
		return fmt.Errorf("branching %s from snapshot %s: %w", v.Dot, snap.ID, err)
	}
	defer func() {
		if err := s.node.DeleteBranch(context.WithoutCancel(ctx), v.Dot, tmp); err != nil {
			s.log.Warn("removing the restore branch", "dot", v.Dot.String(), "branch", tmp, "err", err)
		}
	}()
	return s.copyRoot(ctx, dotmesh.VolumeName{Dot: v.Dot, Branch: tmp}, dst)
}

// fillFromVolume copies a volume's live working state into dst (a clone
// is of the volume as it is now, like a copy of a running disk).
func (s *Server) fillFromVolume(ctx context.Context, src dotmesh.VolumeName, dst dotmesh.DotName) error {
	return s.copyRoot(ctx, dotmesh.VolumeName{Dot: src.Dot, Branch: src.Branch}, dst)
}

// copyRoot copies the whole working tree of src into dst's master branch.
func (s *Server) copyRoot(ctx context.Context, src dotmesh.VolumeName, dst dotmesh.DotName) error {
	src.Subdot = dotmesh.RootSubdot
	from, err := s.node.SubdotPath(ctx, src)
	if err != nil {
		return err
	}
	to, err := s.node.SubdotPath(ctx, dotmesh.VolumeName{Dot: dst, Subdot: dotmesh.RootSubdot})
	if err != nil {
		return err
	}
	// cp -a keeps owners, modes, links and times; "src/." copies contents.
	out, err := exec.CommandContext(ctx, "cp", "-a", "--", from+"/.", to+"/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("copying %s into %s: %w: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}
