package zfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/internal/fusesock"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Kinds of command failure, parsed from what zfs and zpool print. Each
// wraps the dotmesh sentinel callers test for; a *CmdError unwraps to one.
var (
	ErrNoDataset    = fmt.Errorf("zfs: dataset does not exist: %w", dotmesh.ErrNotFound)
	ErrNoPool       = fmt.Errorf("zfs: no such pool: %w", dotmesh.ErrNotFound)
	ErrExists       = fmt.Errorf("zfs: dataset already exists: %w", dotmesh.ErrAlreadyExists)
	ErrBusy         = fmt.Errorf("zfs: dataset is busy: %w", dotmesh.ErrInUse)
	ErrDependents   = fmt.Errorf("zfs: dataset has dependent clones or children: %w", dotmesh.ErrConflict)
	ErrModified     = fmt.Errorf("zfs: destination modified since its last snapshot: %w", dotmesh.ErrDirty)
	ErrBadStream    = fmt.Errorf("zfs: invalid send stream: %w", dotmesh.ErrCorrupt)
	ErrNoDaemon     = fmt.Errorf("zfs: ZFS is not running: %w", dotmesh.ErrUnavailable)
	ErrNotMounted   = errors.New("zfs: not mounted")
	ErrMounted      = errors.New("zfs: already mounted")
	ErrNotIncrement = fmt.Errorf("zfs: not a valid incremental source: %w", dotmesh.ErrInvalidArgument)
)

// classify maps stderr of zfs/zpool (zfs-fuse and OpenZFS wording) to a kind.
// Order matters: the first match wins.
var classes = []struct {
	kind error
	subs []string
}{
	{ErrNoDaemon, []string{"zfs-fuse daemon is running", "failed to initialize ZFS library", "modules are not loaded", "/dev/zfs and /proc/self/mounts are required", "Unable to open /dev/zfs"}},
	{ErrBadStream, []string{"invalid backup stream", "checksum mismatch", "invalid stream", "incomplete stream", "stream ends early", "bad magic number", "unsupported version", "stream has unsupported feature", "local origin for clone", "cannot receive: failed to read from stream"}},
	{ErrModified, []string{"has been modified", "modified since most recent snapshot"}},
	{ErrNotIncrement, []string{"incremental source must be in same filesystem", "not an earlier snapshot", "incremental source", "most recent snapshot of", "does not match incremental source"}},
	{ErrDependents, []string{"has dependent clones", "has children", "use '-r' to destroy", "use '-R' to destroy", "more recent snapshots"}},
	{ErrNoPool, []string{"no such pool", "cannot import", "no pools available to import"}},
	{ErrExists, []string{"already exists"}},
	{ErrNotMounted, []string{"not currently mounted", "not mounted"}},
	{ErrMounted, []string{"already mounted", "filesystem already mounted"}},
	{ErrBusy, []string{"dataset is busy", "pool is busy", "device busy", "Device or resource busy", "is busy"}},
	{ErrNoDataset, []string{"dataset does not exist", "does not exist", "could not find any snapshots"}},
}

func classify(stderr string) error {
	for _, c := range classes {
		for _, s := range c.subs {
			if strings.Contains(stderr, s) {
				return c.kind
			}
		}
	}
	return nil
}

// CmdError is a failed zfs or zpool command.
type CmdError struct {
	Args   []string // the command line
	Stderr string
	Err    error // from exec: exit status, or why it could not run
	Kind   error // one of the Err* kinds above, or nil when unrecognised
}

func (e *CmdError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if i := strings.IndexByte(msg, '\n'); i >= 0 && e.Kind != ErrNoDaemon {
		msg = msg[:i] // zfs prints usage after the reason
	}
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("%s: %s", strings.Join(e.Args, " "), msg)
}

func (e *CmdError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// cli runs the zfs and zpool binaries found at Open.
type cli struct {
	zfs, zpool string
	timeout    time.Duration // for commands that do not stream data
	log        *slog.Logger  // commands and their durations, at debug level
	lock       *cmdLock      // taken by commands that change state; nil: none
	// sock is zfs-fuse's command socket, which snapshots and direct
	// streams go through (fuseioctl.go); nil: the zfs command takes them.
	sock atomic.Pointer[fusesock.Client]
}

// maxStderr bounds what is kept of a command's stderr.
const maxStderr = 64 << 10

type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxStderr - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}

// zfsChanges counts the zfs and zpool commands run by this process that
// may have changed something (all but listings), counted when they end,
// whether they failed or not. Inventory listings are reused only while it
// stays put.
var zfsChanges atomic.Uint64

// readOnly reports whether a zfs or zpool command only reads.
func readOnly(args []string) bool {
	return len(args) > 0 && (args[0] == "get" || args[0] == "list" || args[0] == "status")
}

// unlisted reports whether a command changes only a kept registry record
// (a user property no inventory lists; records.go): it leaves every
// cached listing current, so it is not counted in zfsChanges. Without
// this, the record copies written after each commit, receive and finish
// made the next operation on any dot list its datasets again.
func unlisted(args []string) bool {
	switch {
	case len(args) == 3 && args[0] == "set":
		return isRecProp(args[1])
	case len(args) == 3 && args[0] == "inherit":
		return isRecProp(args[1])
	}
	return false
}

// run runs one command to completion and returns its stdout.
func (c *cli) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if readOnly(args) {
		// A listing takes no lock, but is foreground work on the daemon
		// too: records written behind wait for it (waitQuiet).
		defer c.lock.busy(ctx)()
	} else {
		if !unlisted(args) {
			defer zfsChanges.Add(1)
		}
		if c.lock != nil {
			unlock, err := c.lock.lock(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", progName(prog), strings.Join(args, " "), err)
			}
			defer unlock()
		}
	}
	var out bytes.Buffer
	cmd := c.command(ctx, prog, args...)
	cmd.Stdout = &out
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	if c.log != nil {
		c.log.Debug("zfs command", "args", cmd.Args, "took", time.Since(start), "err", err)
	}
	if err != nil {
		return nil, c.cmdError(ctx, cmd, stderr.String(), err)
	}
	return out.Bytes(), nil
}

func (c *cli) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"} // stable messages
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func (c *cli) cmdError(ctx context.Context, cmd *exec.Cmd, stderr string, err error) error {
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return &CmdError{Args: append([]string{progName(cmd.Path)}, cmd.Args[1:]...), Stderr: stderr, Err: err, Kind: classify(stderr)}
}

func progName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
