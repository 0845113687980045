// Package flex is the Kubernetes FlexVolume driver: the executable kubelet
// runs as .../volume/exec/dotmesh.io~dm/dm with "init", "mount DIR JSON"
// or "unmount DIR". It asks the local dotmesh node (over its HTTP API) for
// the subdot and bind-mounts it onto DIR. kubelet parses stdout and stderr
// together, so a call prints exactly one JSON object and logs to a file.
package flex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/internal/bindmount"
)

// Consumer is the Mount.Consumer of FlexVolume mounts.
const Consumer = "flex"

// Result is the one JSON object a driver call prints.
type Result struct {
	Status       string        `json:"status"` // Success, Failure or Not supported
	Message      string        `json:"message,omitempty"`
	Capabilities *Capabilities `json:"capabilities,omitempty"`
}

// Capabilities answers init: no attach/detach phase (dots are local).
type Capabilities struct {
	Attach bool `json:"attach"`
}

// Node is what the driver needs of the node's API (a *client.Client).
type Node interface {
	Mount(ctx context.Context, req api.MountRequest) (*dotmesh.Mount, error)
	Unmount(ctx context.Context, req api.UnmountRequest) error
	CreateDot(ctx context.Context, name dotmesh.DotName, backend string) (*dotmesh.Dot, error)
}

// Driver runs driver calls.
type Driver struct {
	// Connect returns the local node's client and where its address came
	// from (for messages); it is called only by calls that need the node.
	Connect func() (Node, string, error)
	Log     *slog.Logger
}

func failure(format string, args ...any) Result {
	return Result{Status: "Failure", Message: fmt.Sprintf(format, args...)}
}

// Run performs one call; args are kubelet's, without the program name.
// The exit status is 1 for a Failure, else 0.
func (d *Driver) Run(ctx context.Context, args []string) (Result, int) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	r := d.run(ctx, args)
	d.Log.Info("flex call", "args", args, "status", r.Status, "message", r.Message)
	if r.Status == "Failure" {
		return r, 1
	}
	return r, 0
}

func (d *Driver) run(ctx context.Context, args []string) Result {
	if len(args) == 0 {
		return failure("no driver call given; kubelet calls init, mount DIR JSON and unmount DIR")
	}
	switch args[0] {
	case "init":
		return Result{Status: "Success", Capabilities: &Capabilities{Attach: false}}
	case "mount":
		if len(args) != 3 {
			return failure("usage: mount DIR JSON-OPTIONS")
		}
		return d.mount(ctx, args[1], args[2])
	case "unmount":
		if len(args) != 2 {
			return failure("usage: unmount DIR")
		}
		return d.unmount(ctx, args[1])
	}
	return Result{Status: "Not supported"}
}

func checkDir(dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("mount directory %q must be an absolute path", dir)
	}
	return filepath.Clean(dir), nil
}

func (d *Driver) mount(ctx context.Context, dir, js string) Result {
	dir, err := checkDir(dir)
	if err != nil {
		return failure("%v", err)
	}
	o, err := ParseOptions(js)
	if err != nil {
		return failure("bad dotmesh flexVolume options: %v", err)
	}
	info, err := bindmount.Stat(dir)
	if err != nil {
		return failure("%v", err)
	}
	if info.Mounted {
		return Result{Status: "Success", Message: "already mounted"}
	}
	node, from, err := d.Connect()
	if err != nil {
		return failure("cannot find the dotmesh node to ask: %v", err)
	}
	req := api.MountRequest{Volume: o.Volume.String(), Consumer: Consumer, ID: dir}
	if o.Pod != "" {
		req.Name = "pod " + o.Pod
	}
	m, err := node.Mount(ctx, req)
	if errors.Is(err, dotmesh.ErrNotFound) && o.Volume.Branch == "" {
		// A pod may name a dot nobody made yet: make it, as Docker does.
		if _, cerr := node.CreateDot(ctx, o.Volume.Dot, ""); cerr != nil && !errors.Is(cerr, dotmesh.ErrAlreadyExists) {
			return d.nodeFailure("creating dot "+o.Volume.Dot.String(), cerr, from)
		}
		m, err = node.Mount(ctx, req)
	}
	if err != nil {
		return d.nodeFailure("mounting "+o.Volume.String(), err, from)
	}
	if err := bindmount.Bind(m.Path, dir, o.ReadOnly); err != nil {
		if uerr := node.Unmount(context.WithoutCancel(ctx), api.UnmountRequest{Volume: req.Volume, Consumer: Consumer, ID: dir}); uerr != nil {
			d.Log.Warn("releasing the mount after a failed bind mount", "dir", dir, "err", uerr)
		}
		return failure("%v (the driver must run as root, as kubelet does)", err)
	}
	return Result{Status: "Success"}
}

func (d *Driver) unmount(ctx context.Context, dir string) Result {
	dir, err := checkDir(dir)
	if err != nil {
		return failure("%v", err)
	}
	if err := bindmount.Unmount(dir); err != nil {
		return failure("%v", err)
	}
	node, from, err := d.Connect()
	if err != nil {
		return failure("unmounted %s, but cannot find the dotmesh node to release it: %v", dir, err)
	}
	if err := node.Unmount(ctx, api.UnmountRequest{Consumer: Consumer, ID: dir}); err != nil {
		return d.nodeFailure("releasing "+dir+" (it is unmounted already; kubelet retries)", err, from)
	}
	return Result{Status: "Success"}
}

// nodeFailure words an API error for a cluster operator reading
// `kubectl describe pod`.
func (d *Driver) nodeFailure(what string, err error, from string) Result {
	if errors.Is(err, dotmesh.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return failure("%s: the dotmesh node is unreachable (%v); is `dm serve` running on this node? (node address from %s)", what, err, from)
	}
	if errors.Is(err, dotmesh.ErrUnauthorized) {
		return failure("%s: the dotmesh node refused the API key (%v); run `dm flex install` again (key from %s)", what, err, from)
	}
	return failure("%s: %v", what, err)
}
