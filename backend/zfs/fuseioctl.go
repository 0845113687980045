package zfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/internal/fusesock"
)

// socketSnapshots and socketStreams count the snapshots taken, and the
// streams sent and received, through zfs-fuse's socket.
var socketSnapshots, socketStreams atomic.Uint64

// sockSnapshot takes s through zfs-fuse's command socket, as the
// command (args) would and under the same lock; done is false when the command
// must take it instead: nothing was asked of a daemon (none listens
// there: the command then says what is wrong), or the daemon's layout
// is another (the socket is then left for good), or a property is one a
// snapshot does not take through it.
func (c *cli) sockSnapshot(ctx context.Context, sc *fusesock.Client, args []string, s snapshot, props []prop) (done bool, err error) {
	kv := make(map[string]string, len(props))
	for _, p := range props {
		if !strings.Contains(p.key, ":") {
			return false, nil
		}
		kv[p.key] = p.value
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if c.lock != nil {
		unlock, err := c.lock.lock(ctx)
		if err != nil {
			return true, fmt.Errorf("zfs %s: %w", strings.Join(args, " "), err)
		}
		defer unlock()
	}
	start := time.Now()
	err = sc.Snapshot(ctx, s.fs.name, s.name, kv)
	c.logIoctl(sc, args, start, err)
	if c.untaken(sc, err) {
		return false, nil
	}
	zfsChanges.Add(1)
	return outcome(&socketSnapshots, args, fmt.Sprintf("cannot create snapshot '%s'", s), err, map[syscall.Errno]string{
		syscall.ENOENT: "dataset does not exist",
		syscall.EEXIST: "dataset already exists",
		syscall.EBUSY:  "dataset is busy",
	})
}

// sockSend makes `zfs send [-i from] to` (args) into f through the
// socket; done is false when no daemon listens there, and the command
// must.
func (c *cli) sockSend(ctx context.Context, sc *fusesock.Client, args []string, from *snapshot, to snapshot, f *os.File) (done bool, err error) {
	short := ""
	if from != nil {
		short = from.name
	}
	start := time.Now()
	err = sc.Send(ctx, to.String(), short, f)
	c.logIoctl(sc, args, start, err)
	if c.untaken(sc, err) {
		return false, nil
	}
	return outcome(&socketStreams, args, fmt.Sprintf("warning: cannot send '%s'", to), err, map[syscall.Errno]string{
		syscall.EXDEV:  "not an earlier snapshot from the same fs",
		syscall.ENOENT: "incremental source does not exist",
		syscall.EPIPE:  "Broken pipe",
	})
}

// sockReceive makes `zfs receive [-F] target` of an increment from f
// through the socket; done is false when no daemon listens there (then
// nothing was read from f), and the command must. As with the command,
// which passes the daemon f, the daemon reads the stream itself: should
// this process die, the daemon still receives what the peer sends, and
// baresock.Shutdown, not a cancelled ctx, is what ends the stream.
func (c *cli) sockReceive(ctx context.Context, sc *fusesock.Client, args []string, target string, force bool, f *os.File) (done bool, err error) {
	start := time.Now()
	err = sc.Receive(ctx, target, force, f)
	c.logIoctl(sc, args, start, err)
	// A daemon of another layout refuses only after the stream's first
	// record was read: too late for the command.
	if c.untaken(sc, err) && !errors.Is(err, fusesock.ErrLayout) {
		return false, nil
	}
	fs, _, _ := strings.Cut(target, "@")
	return outcome(&socketStreams, args, "cannot receive incremental stream", err, map[syscall.Errno]string{
		syscall.ENODEV:  fmt.Sprintf("most recent snapshot of %s does not match incremental source", fs),
		syscall.ETXTBSY: fmt.Sprintf("destination %s has been modified since most recent snapshot", fs),
		syscall.EEXIST:  "destination already exists",
		syscall.EINVAL:  "invalid stream (bad magic number)",
		syscall.EBADE:   "invalid stream (checksum mismatch)", // ECKSUM
		syscall.ENOENT:  "destination does not exist",
		syscall.EBUSY:   "dataset is busy",
		syscall.ENOSPC:  "out of space",
		syscall.EDQUOT:  "destination space quota exceeded",
	})
}

// untaken says whether the daemon was asked nothing (err: no daemon at
// the socket, or one of another layout, which is then left for good).
func (c *cli) untaken(sc *fusesock.Client, err error) bool {
	var de *fusesock.DialError
	switch {
	case errors.As(err, &de):
		return true
	case errors.Is(err, fusesock.ErrLayout):
		if c.sock.CompareAndSwap(sc, nil) && c.log != nil {
			c.log.Warn("zfs-fuse's command socket speaks another layout; the zfs command takes over", "socket", sc.Path(), "err", err)
		}
		return true
	}
	return false
}

func (c *cli) logIoctl(sc *fusesock.Client, args []string, start time.Time, err error) {
	if c.log != nil {
		c.log.Debug("zfs ioctl", "socket", sc.Path(), "args", args, "took", time.Since(start), "err", err)
	}
}

// outcome is the result of a call the daemon was asked: counted in n
// when it succeeded, else its CmdError (sockError).
func outcome(n *atomic.Uint64, args []string, what string, err error, words map[syscall.Errno]string) (done bool, _ error) {
	if err == nil {
		n.Add(1)
		return true, nil
	}
	return true, sockError(args, what, err, words)
}

// sockError is the CmdError of a failed ioctl, in the command's words
// (what, then the errno's words, or else its own), so that classify
// gives the kinds the command's stderr gives.
func sockError(args []string, what string, err error, words map[syscall.Errno]string) error {
	msg := err.Error()
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		w, ok := words[errno]
		if !ok {
			w = errno.Error()
		}
		msg = what + ": " + w
	case errors.Is(err, fusesock.ErrStream):
		msg = what + ": " + strings.TrimPrefix(err.Error(), "fusesock: ")
	}
	return &CmdError{Args: append([]string{"zfs"}, args...), Stderr: msg, Err: err, Kind: classify(msg)}
}
