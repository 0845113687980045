package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Mount records that a consumer — a Docker container, a Kubernetes pod —
// uses a subdot. Mounts live in the registry so they survive a restart of
// the node while containers keep running.
type Mount struct {
	// Consumer is the frontend that made the mount: "docker", "csi", "flex".
	Consumer string `json:"consumer"`
	// ID is unique per consumer: Docker's mount ID, kubelet's target path.
	ID string `json:"id"`
	// Name says who uses it, for people (a container or pod name), if known.
	Name string `json:"name,omitempty"`
	// Node is the cluster node the consumer runs on; empty on a single node.
	Node string `json:"node,omitempty"`

	Dot    DotID  `json:"dot"`
	Branch string `json:"branch"`
	Subdot string `json:"subdot"`
	// Pinned is true when the volume name named the branch, so the mount
	// does not follow `dm checkout`.
	Pinned  bool      `json:"pinned,omitempty"`
	Volume  string    `json:"volume"` // the name as the consumer gave it
	Path    string    `json:"path"`
	Created time.Time `json:"created"`
}

// MountController is implemented by frontends whose consumers can let go
// of a mount and take it up again — Docker stops and starts containers.
// With it registered, Reset and Checkout can switch data under running
// consumers when asked to (Restart), instead of refusing.
type MountController interface {
	// Consumer is the Mount.Consumer this controller handles.
	Consumer() string
	// Stop makes the consumers of mounts release them.
	Stop(ctx context.Context, mounts []Mount) error
	// Start brings them back; each mounts again and sees the new state.
	Start(ctx context.Context, mounts []Mount) error
}

// registerMountController is Mounts.RegisterController.
func (n *Node) registerMountController(c MountController) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.controllers == nil {
		n.controllers = make(map[string]MountController)
	}
	n.controllers[c.Consumer()] = c
}

// mount is Mounts.Mount.
func (n *Node) mount(ctx context.Context, v VolumeName, consumer, id, name string) (*Mount, error) {
	if err := ValidateName("consumer", consumer); err != nil {
		return nil, err
	}
	if id == "" || len(id) > 4096 || strings.ContainsRune(id, 0) {
		return nil, fmt.Errorf("%w: mount id must be 1 to 4096 bytes without NUL", ErrInvalidArgument)
	}
	d, b, _, err := n.resolveBranch(ctx, v.Dot, v.Branch)
	if err != nil {
		return nil, err
	}
	key := mountKey(d.ID, n.nodeID(), consumer, id)
	if kv, err := n.store.Get(ctx, key); err == nil {
		return decode[Mount](kv)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err := n.place.acquire(ctx, d, b.Name); err != nil {
		return nil, err
	}
	defer n.lockDot(d.ID)()
	if kv, err := n.store.Get(ctx, key); err == nil {
		return decode[Mount](kv)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// Re-read under the lock: a checkout may have moved the current branch.
	d, b, _, err = n.resolveBranch(ctx, v.Dot, v.Branch)
	if err != nil {
		return nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, err
	}
	path, err := be.SubdotPath(ctx, b.Ref(), v.SubdotOrDefault())
	if err != nil {
		return nil, err
	}
	if err := n.place.checkMaster(d, b); err != nil {
		return nil, err
	}
	m := &Mount{
		Consumer: consumer, ID: id, Name: name, Node: n.nodeID(),
		Dot: d.ID, Branch: b.Name, Subdot: v.SubdotOrDefault(), Pinned: v.Branch != "",
		Volume: v.String(), Path: path, Created: n.now().UTC(),
	}
	if _, err := n.store.Txn(ctx, []Condition{IfAbsent(key)}, []Op{PutOp(key, encode(m))}); err != nil {
		return nil, err
	}
	return m, nil
}

// unmount is Mounts.Unmount.
func (n *Node) unmount(ctx context.Context, dot DotName, consumer, id string) error {
	d, err := n.Dot(ctx, dot)
	if errors.Is(err, ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	return n.store.Delete(ctx, mountKey(d.ID, n.nodeID(), consumer, id))
}

// listMounts is Mounts.List.
func (n *Node) listMounts(ctx context.Context, dot DotName) ([]Mount, error) {
	d, err := n.Dot(ctx, dot)
	if err != nil {
		return nil, err
	}
	return n.mounts(ctx, d.ID)
}

func (n *Node) mounts(ctx context.Context, id DotID) ([]Mount, error) {
	kvs, err := n.store.List(ctx, mountPrefix(id))
	if err != nil {
		return nil, err
	}
	out := make([]Mount, 0, len(kvs))
	for _, kv := range kvs {
		m, err := decode[Mount](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// affected returns the mounts whose data an operation would change: those
// on branch (for a reset), or the unpinned ones following the current
// branch (for a checkout, branch == "").
func (n *Node) affected(ctx context.Context, d *Dot, branch string) ([]Mount, error) {
	all, err := n.mounts(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, m := range all {
		if (branch != "" && m.Branch == branch) || (branch == "" && !m.Pinned) {
			out = append(out, m)
		}
	}
	return out, nil
}

// guardMounts refuses an operation that would change data under running
// consumers, or, with restart, stops them and returns a func that starts
// them again (to be called once the operation is done, whatever happened).
func (n *Node) guardMounts(ctx context.Context, d *Dot, branch, what string, restart bool) (func(), error) {
	ms, err := n.affected(ctx, d, branch)
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return func() {}, nil
	}
	if !restart {
		return nil, &MountsInUseError{Op: what, Users: describeMounts(ms)}
	}
	byConsumer := make(map[string][]Mount)
	for _, m := range ms {
		byConsumer[m.Consumer] = append(byConsumer[m.Consumer], m)
	}
	n.mu.Lock()
	ctrls := make(map[string]MountController, len(byConsumer))
	for c := range byConsumer {
		ctrl, ok := n.controllers[c]
		if !ok {
			n.mu.Unlock()
			return nil, fmt.Errorf("%w: %s would change data under %s, and this node cannot restart %s consumers; stop them first", ErrInUse, what, describeMounts(byConsumer[c]), c)
		}
		ctrls[c] = ctrl
	}
	n.mu.Unlock()
	var stopped []string
	for c, list := range byConsumer {
		if err := ctrls[c].Stop(ctx, list); err != nil {
			for _, s := range stopped {
				n.startConsumers(ctrls[s], byConsumer[s])
			}
			return nil, fmt.Errorf("stopping %s before the %s: %w", describeMounts(list), what, err)
		}
		stopped = append(stopped, c)
	}
	return func() {
		for _, c := range stopped {
			n.startConsumers(ctrls[c], byConsumer[c])
		}
	}, nil
}

func (n *Node) startConsumers(c MountController, ms []Mount) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Start(ctx, ms); err != nil {
		n.log.Error("starting consumers again", "consumer", c.Consumer(), "mounts", describeMounts(ms), "err", err)
	}
}

// describeMounts names consumers for people: "docker container web (mount 1a2b...)".
func describeMounts(ms []Mount) string {
	var parts []string
	for _, m := range ms {
		who := m.Name
		if who == "" {
			who = "mount " + m.ID
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s)", m.Consumer, who, m.Volume))
	}
	return strings.Join(parts, ", ")
}
