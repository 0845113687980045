package zfs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/internal/fusesock"
)

// socketSnapshots counts the snapshots taken through zfs-fuse's socket.
var socketSnapshots atomic.Uint64

// sockSnapshot takes s through zfs-fuse's command socket, as the
// command would and under the same lock; done is false when the command
// must take it instead: nothing was asked of a daemon (none listens
// there: the command then says what is wrong), or the daemon's layout
// is another (the socket is then left for good), or a property is one a
// snapshot does not take through it.
func (c *cli) sockSnapshot(ctx context.Context, sc *fusesock.Client, s snapshot, props []prop) (err error, done bool) {
	kv := make(map[string]string, len(props))
	for _, p := range props {
		if !strings.Contains(p.key, ":") {
			return nil, false
		}
		kv[p.key] = p.value
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	args := append(append([]string{"snapshot"}, propArgs(props)...), s.String())
	if c.lock != nil {
		unlock, err := c.lock.lock(ctx)
		if err != nil {
			return fmt.Errorf("zfs %s: %w", strings.Join(args, " "), err), true
		}
		defer unlock()
	}
	start := time.Now()
	err = sc.Snapshot(ctx, s.fs.name, s.name, kv)
	if c.log != nil {
		c.log.Debug("zfs ioctl", "socket", sc.Path(), "args", args, "took", time.Since(start), "err", err)
	}
	var de *fusesock.DialError
	switch {
	case errors.As(err, &de):
		return nil, false
	case errors.Is(err, fusesock.ErrLayout):
		if c.sock.CompareAndSwap(sc, nil) && c.log != nil {
			c.log.Warn("zfs-fuse's command socket speaks another layout; snapshots go through the zfs command", "socket", sc.Path(), "err", err)
		}
		return nil, false
	}
	zfsChanges.Add(1)
	if err == nil {
		socketSnapshots.Add(1)
		return nil, true
	}
	// In the command's words, so that classify gives the same kinds.
	msg := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT:
			msg = "dataset does not exist"
		case syscall.EEXIST:
			msg = "dataset already exists"
		case syscall.EBUSY:
			msg = "dataset is busy"
		}
		msg = fmt.Sprintf("cannot create snapshot '%s': %s", s, msg)
	}
	return &CmdError{Args: append([]string{"zfs"}, args...), Stderr: msg, Err: err, Kind: classify(msg)}, true
}
