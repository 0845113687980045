//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Send and receive are not ioctls containerd/btrfs wraps (the send ioctl
// wants a stream writer and the receive side is a whole interpreter in
// btrfs-progs), so these run the btrfs tool.

// btrfsSend writes `btrfs send [-p parent] snap` to w.
func btrfsSend(ctx context.Context, snap, parent string, w io.Writer) error {
	args := []string{"send", "-q"}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	args = append(args, snap)
	cmd := exec.CommandContext(ctx, "btrfs", args...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		return progError(ctx, "btrfs send "+snap, err, stderr.String())
	}
	return nil
}

// receiver is a running `btrfs receive` into a directory.
type receiver struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *strings.Builder
	cancel context.CancelFunc
	dir    string
}

// startReceive starts `btrfs receive` into dir, confined there with
// chroot (-C) so that no path in a stream can reach outside, and stopping
// at the end of the first stream (-e).
func startReceive(ctx context.Context, dir string) (*receiver, error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, "btrfs", "receive", "-q", "-e", "-C", dir)
	stderr := new(strings.Builder)
	cmd.Stderr, cmd.Stdout = stderr, io.Discard
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("%w: starting btrfs receive: %v", dotmesh.ErrUnavailable, err)
	}
	return &receiver{cmd: cmd, stdin: stdin, stderr: stderr, cancel: cancel, dir: dir}, nil
}

// finish closes the input and waits for btrfs receive to exit.
func (r *receiver) finish(ctx context.Context) error {
	defer r.cancel()
	_ = r.stdin.Close()
	if err := r.cmd.Wait(); err != nil {
		return progError(ctx, "btrfs receive into "+r.dir, err, r.stderr.String())
	}
	return nil
}

// abort kills btrfs receive and waits for it.
func (r *receiver) abort() {
	r.cancel()
	_ = r.stdin.Close()
	_ = r.cmd.Wait()
}

// progError turns a failed btrfs-progs run into an error wrapping the
// sentinel its message points to.
func progError(ctx context.Context, what string, err error, stderr string) error {
	msg := strings.TrimSpace(stderr)
	if msg == "" {
		msg = err.Error()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w (%s)", what, ctx.Err(), msg)
	}
	var kind error
	low := strings.ToLower(msg)
	switch {
	case errors.Is(err, exec.ErrNotFound):
		kind = errNoProgs
	case strings.Contains(low, "cannot find parent subvolume"),
		strings.Contains(low, "could not find parent"),
		strings.Contains(low, "no such file or directory"):
		kind = dotmesh.ErrNotFound
	case strings.Contains(low, "file exists"):
		kind = dotmesh.ErrAlreadyExists
	case strings.Contains(low, "short read"),
		strings.Contains(low, "unexpected eof"),
		strings.Contains(low, "bad magic"),
		strings.Contains(low, "unexpected header"),
		strings.Contains(low, "crc"),
		strings.Contains(low, "invalid"),
		strings.Contains(low, "unknown command"),
		strings.Contains(low, "stream version"):
		kind = dotmesh.ErrCorrupt
	case strings.Contains(low, "no space left"),
		strings.Contains(low, "operation not permitted"),
		strings.Contains(low, "permission denied"),
		strings.Contains(low, "not a btrfs"),
		strings.Contains(low, "read-only file system"):
		kind = dotmesh.ErrUnavailable
	}
	if kind == nil {
		return fmt.Errorf("%s: %v: %s", what, err, msg)
	}
	return fmt.Errorf("%w: %s: %s", kind, what, msg)
}
