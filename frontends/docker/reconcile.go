package docker

import (
	"context"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Reconcile forgets Docker mounts that no running container holds any
// more: Docker's Unmount fails while the node is down, so a container that
// stopped meanwhile would otherwise block resets for ever. Only mounts
// recorded before the node started are considered (a container being
// started now is not running yet), and nothing is forgotten when the
// engine does not answer.
func (p *Plugin) Reconcile(ctx context.Context, startedAt time.Time) error {
	dots, err := p.node.ListDots(ctx)
	if err != nil {
		return err
	}
	var old []dotmesh.Mount
	for _, st := range dots {
		for _, m := range st.Mounts {
			if m.Consumer == Consumer && m.Created.Before(startedAt) {
				old = append(old, m)
			}
		}
	}
	if len(old) == 0 {
		return nil
	}
	running, err := p.engine.containers(ctx, false, "")
	if err != nil {
		return err
	}
	c := p.Controller()
	for _, st := range dots {
		for _, m := range st.Mounts {
			if m.Consumer != Consumer || !m.Created.Before(startedAt) {
				continue
			}
			held := false
			for _, ct := range running {
				held = held || c.usesVolume(ct, m.Volume)
			}
			if held {
				continue
			}
			if err := p.node.Mounts().Unmount(ctx, st.Dot.DotName(), Consumer, m.ID); err != nil {
				return err
			}
			p.log.Info("forgot a Docker mount no running container holds", "volume", m.Volume, "mount", m.ID, "container", m.Name)
		}
	}
	return nil
}
