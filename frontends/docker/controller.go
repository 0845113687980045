package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Controller is the dotmesh.MountController for Docker: it stops the
// containers that use the affected mounts and starts them again, so that
// `dm reset --restart` and `dm checkout --restart` switch data under them.
// Stopping makes Docker unmount (and the mount records go); starting makes
// Docker mount again and see the new state.
type Controller struct {
	p *Plugin

	mu      sync.Mutex
	stopped map[string][]string // mount ID -> container IDs Stop stopped for it
}

// Controller returns the plugin's MountController.
func (p *Plugin) Controller() *Controller {
	return &Controller{p: p, stopped: make(map[string][]string)}
}

var _ dotmesh.MountController = (*Controller)(nil)

// Consumer is Docker's Mount.Consumer.
func (c *Controller) Consumer() string { return Consumer }

// Stop stops every running container that uses one of the mounts' volumes.
// Containers started with --rm are refused before anything is stopped:
// Docker would delete them on stop, and they could not come back.
func (c *Controller) Stop(ctx context.Context, mounts []dotmesh.Mount) error {
	running, err := c.p.engine.containers(ctx, false, "")
	if err != nil {
		return err
	}
	byMount := make(map[string][]container)
	var victims []container
	seen := make(map[string]bool)
	for _, m := range mounts {
		for _, ct := range running {
			if !c.usesVolume(ct, m.Volume) {
				continue
			}
			byMount[m.ID] = append(byMount[m.ID], ct)
			if !seen[ct.ID] {
				seen[ct.ID] = true
				victims = append(victims, ct)
			}
		}
		if len(byMount[m.ID]) == 0 {
			// Docker unmounts when a container stops; a record with no
			// running container is a mount Docker is about to release, or
			// one left while the node was down. Nothing to stop for it.
			c.p.log.Warn("no running container uses a recorded Docker mount", "volume", m.Volume, "mount", m.ID)
		}
	}
	var rm []string
	for _, ct := range victims {
		auto, err := c.p.engine.autoRemove(ctx, ct.ID)
		if err != nil {
			return err
		}
		if auto {
			rm = append(rm, ct.name())
		}
	}
	if len(rm) > 0 {
		return fmt.Errorf("%w: container %s was started with --rm, so Docker would delete it when stopped; stop it yourself", dotmesh.ErrInUse, strings.Join(rm, ", "))
	}
	var done []container
	for _, ct := range victims {
		c.p.log.Info("stopping container to switch its data", "container", ct.name())
		if err := c.p.engine.stop(ctx, ct.ID); err != nil {
			// Bring back what we stopped before giving up.
			for _, s := range done {
				if serr := c.p.engine.start(context.WithoutCancel(ctx), s.ID); serr != nil {
					err = errors.Join(err, serr)
				}
			}
			return fmt.Errorf("stopping container %s: %w", ct.name(), err)
		}
		done = append(done, ct)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, cs := range byMount {
		for _, ct := range cs {
			c.stopped[id] = append(c.stopped[id], ct.ID)
		}
	}
	return nil
}

// Start starts the containers Stop stopped for these mounts.
func (c *Controller) Start(ctx context.Context, mounts []dotmesh.Mount) error {
	c.mu.Lock()
	var ids []string
	seen := make(map[string]bool)
	for _, m := range mounts {
		for _, id := range c.stopped[m.ID] {
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		delete(c.stopped, m.ID)
	}
	c.mu.Unlock()
	var errs []error
	for _, id := range ids {
		c.p.log.Info("starting container again", "container", id[:min(12, len(id))])
		if err := c.p.engine.start(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("starting container %s: %w", id[:min(12, len(id))], err))
		}
	}
	return errors.Join(errs...)
}

// usesVolume reports whether a container mounts, through this plugin, a
// volume whose name means the same as recorded (Docker keeps the name as
// typed; the record keeps it normalised).
func (c *Controller) usesVolume(ct container, recorded string) bool {
	for _, m := range ct.Mounts {
		if m.Type != "volume" || m.Driver != c.p.driver {
			continue
		}
		if v, err := dotmesh.ParseVolumeName(m.Name); err == nil && v.String() == recorded {
			return true
		}
	}
	return false
}
