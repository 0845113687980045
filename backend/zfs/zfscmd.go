package zfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/bigpipe"
)

// The command forms below are the ones zfs-fuse (pool version 23) and
// OpenZFS both accept. Notably absent: `zfs list -p`, `zfs get -t`,
// `zfs receive -o`, `zfs send -c/-L/-w`, `zfs diff`, `written`,
// `logicalused`, `createtxg`, `clones`.

func propArgs(props []prop) []string {
	var args []string
	for _, p := range props {
		args = append(args, "-o", p.String())
	}
	return args
}

func (c *cli) create(ctx context.Context, d dataset, props ...prop) error {
	args := append([]string{"create"}, propArgs(props)...)
	_, err := c.run(ctx, c.zfs, append(args, d.String())...)
	return err
}

func (c *cli) snapshot(ctx context.Context, s snapshot, props ...prop) error {
	args := append(append([]string{"snapshot"}, propArgs(props)...), s.String())
	if sc := c.sock.Load(); sc != nil {
		if done, err := c.sockSnapshot(ctx, sc, args, s, props); done {
			return err
		}
	}
	_, err := c.run(ctx, c.zfs, args...)
	return err
}

func (c *cli) clone(ctx context.Context, s snapshot, d dataset, props ...prop) error {
	args := append([]string{"clone"}, propArgs(props)...)
	_, err := c.run(ctx, c.zfs, append(args, s.String(), d.String())...)
	return err
}

func (c *cli) rename(ctx context.Context, from, to dataset) error {
	_, err := c.run(ctx, c.zfs, "rename", from.String(), to.String())
	return err
}

func (c *cli) promote(ctx context.Context, d dataset) error {
	_, err := c.run(ctx, c.zfs, "promote", d.String())
	return err
}

// destroyFS destroys one filesystem that has no snapshots and no children.
// There is deliberately no recursive form: -r/-R could take other
// branches' data with it.
func (c *cli) destroyFS(ctx context.Context, d dataset) error {
	_, err := c.run(ctx, c.zfs, "destroy", d.String())
	return err
}

// destroySnapshot destroys s; deferred (-d) marks a snapshot that still has
// clones for destruction when its last clone goes, instead of failing.
func (c *cli) destroySnapshot(ctx context.Context, s snapshot, deferred bool) error {
	args := []string{"destroy"}
	if deferred {
		args = append(args, "-d")
	}
	_, err := c.run(ctx, c.zfs, append(args, s.String())...)
	return err
}

// rollback rolls s's filesystem back to s, which must be its latest
// snapshot (no -r: later snapshots are never destroyed implicitly).
func (c *cli) rollback(ctx context.Context, s snapshot) error {
	_, err := c.run(ctx, c.zfs, "rollback", s.String())
	return err
}

func (c *cli) mount(ctx context.Context, d dataset) error {
	_, err := c.run(ctx, c.zfs, "mount", d.String())
	if errors.Is(err, ErrMounted) {
		return nil
	}
	return err
}

func (c *cli) umount(ctx context.Context, d dataset) error {
	_, err := c.run(ctx, c.zfs, "umount", d.String())
	if errors.Is(err, ErrNotMounted) {
		return nil
	}
	return err
}

// inherit removes a user property set on target.
func (c *cli) inherit(ctx context.Context, target, p string) error {
	if _, err := parseTarget(target); err != nil {
		return err
	}
	if !settable[p] && !isRecProp(p) {
		return fmt.Errorf("%w: property %q is not one this backend sets", dotmesh.ErrInvalidArgument, p)
	}
	_, err := c.run(ctx, c.zfs, "inherit", p, target)
	return err
}

func (c *cli) set(ctx context.Context, target string, p prop) error {
	if _, err := parseTarget(target); err != nil {
		return err
	}
	_, err := c.run(ctx, c.zfs, "set", p.String(), target)
	return err
}

// parseTarget validates a dataset or snapshot name given as a string.
func parseTarget(s string) (string, error) {
	if strings.Contains(s, "@") {
		sn, err := parseSnapshot(s)
		return sn.String(), err
	}
	d, err := parseDataset(s)
	return d.String(), err
}

// propRow is one line of `zfs get -Hp -o name,property,value`.
type propRow struct{ name, prop, value string }

// get reads properties with exact numbers (-p), recursively when asked.
// `zfs get -Hp -o name,property,value` is the one listing form that gives
// parseable exact values on both zfs-fuse and OpenZFS.
func (c *cli) get(ctx context.Context, recursive bool, props []string, d dataset) ([]propRow, error) {
	args := []string{"get", "-Hp"}
	if recursive {
		args = append(args, "-r")
	}
	args = append(args, "-o", "name,property,value", strings.Join(props, ","), d.String())
	out, err := c.run(ctx, c.zfs, args...)
	if err != nil {
		return nil, err
	}
	return parsePropRows(out)
}

func parsePropRows(out []byte) ([]propRow, error) {
	var rows []propRow
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("zfs get: unexpected line %q", line)
		}
		rows = append(rows, propRow{f[0], f[1], f[2]})
	}
	return rows, sc.Err()
}

// getInt reads one numeric property of a dataset or snapshot.
func (c *cli) getInt(ctx context.Context, target, p string) (int64, error) {
	t, err := parseTarget(target)
	if err != nil {
		return 0, err
	}
	out, err := c.run(ctx, c.zfs, "get", "-Hp", "-o", "value", p, t)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("zfs get %s %s: %q is not a number", p, t, out)
	}
	return v, nil
}

// send runs `zfs send [-i from] to` and hands its stdout to consume. When
// consume fails, the command is stopped and consume's error returned.
func (c *cli) send(ctx context.Context, from *snapshot, to snapshot, consume func(io.Reader) error) error {
	args := []string{"send"}
	if from != nil {
		args = append(args, "-i", from.String())
	}
	args = append(args, to.String())
	defer c.lock.busy(ctx)()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := c.command(ctx, c.zfs, args...)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, pw, err := bigpipe.New() // zfs runs ahead of a busy consumer
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout = pw
	err = cmd.Start()
	pw.Close() // the child's copy keeps it open
	if err != nil {
		return c.cmdError(ctx, cmd, "", err)
	}
	start := time.Now()
	defer func() {
		if c.log != nil {
			c.log.Debug("zfs command", "args", cmd.Args, "took", time.Since(start))
		}
	}()
	cerr := consume(out)
	if cerr != nil {
		cancel()
		out.Close() // zfs stops with EPIPE
	} else {
		_, _ = io.Copy(io.Discard, out) // normally at EOF already
	}
	werr := cmd.Wait()
	if cerr != nil {
		return cerr
	}
	if werr != nil {
		return c.cmdError(ctx, cmd, stderr.String(), werr)
	}
	return nil
}

// receive runs `zfs receive [-F] target` and lets produce write the stream
// to it. When produce fails, zfs's input is closed early, which makes zfs
// abandon the receive, and produce's error is returned.
func (c *cli) receive(ctx context.Context, target string, force bool, produce func(io.Writer) error) error {
	args, err := receiveArgs(target, force)
	if err != nil {
		return err
	}
	defer zfsChanges.Add(1)
	defer c.lock.busy(ctx)()
	cmd := c.command(ctx, c.zfs, args...)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	pr, in, err := bigpipe.New() // the stream runs ahead of a busy zfs
	if err != nil {
		return err
	}
	defer in.Close()
	cmd.Stdin = pr
	err = cmd.Start()
	pr.Close() // the child's copy keeps it open
	if err != nil {
		return c.cmdError(ctx, cmd, "", err)
	}
	start := time.Now()
	perr := produce(in)
	_ = in.Close()
	werr := cmd.Wait()
	if c.log != nil {
		c.log.Debug("zfs command", "args", cmd.Args, "took", time.Since(start), "err", werr)
	}
	if werr != nil {
		werr = c.cmdError(ctx, cmd, stderr.String(), werr)
	}
	if perr != nil {
		if werr != nil && !isPipeError(perr) {
			return fmt.Errorf("%w (zfs receive: %v)", perr, werr)
		}
		if werr != nil {
			return werr // zfs gave up first: its reason is the useful one
		}
		return perr
	}
	return werr
}

// sendTo runs `zfs send [-i from] to` with f, a socket, as its stdout,
// or makes its ioctl through zfs-fuse's socket (sockSend).
func (c *cli) sendTo(ctx context.Context, from *snapshot, to snapshot, f *os.File) error {
	defer c.lock.busy(ctx)()
	args := []string{"send"}
	if from != nil {
		args = append(args, "-i", from.String())
	}
	args = append(args, to.String())
	if sc := c.sock.Load(); sc != nil && (from == nil || from.fs == to.fs) {
		if done, err := c.sockSend(ctx, sc, args, from, to, f); done {
			return err
		}
	}
	return c.runWith(ctx, args, nil, f)
}

// receiveFrom runs `zfs receive [-F] target` with f, a socket, as its
// stdin, or makes its ioctl through zfs-fuse's socket (sockReceive).
func (c *cli) receiveFrom(ctx context.Context, target string, force bool, f *os.File) error {
	args, err := receiveArgs(target, force)
	if err != nil {
		return err
	}
	defer zfsChanges.Add(1)
	defer c.lock.busy(ctx)()
	if sc := c.sock.Load(); sc != nil {
		if done, err := c.sockReceive(ctx, sc, args, target, force, f); done {
			return err
		}
	}
	return c.runWith(ctx, args, f, nil)
}

// receiveArgs is `receive [-F] target`, target checked.
func receiveArgs(target string, force bool) ([]string, error) {
	t, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	args := []string{"receive"}
	if force {
		args = append(args, "-F")
	}
	return append(args, t), nil
}

// runWith runs zfs with stdin or stdout set to a file of the caller's.
func (c *cli) runWith(ctx context.Context, args []string, stdin, stdout *os.File) error {
	cmd := c.command(ctx, c.zfs, args...)
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	// The socket outlives this process in the command's hands: should
	// the node die, the command dies with it rather than finish a
	// transfer nobody records. Pdeathsig fires when the thread that
	// started the command ends, so it stays locked until Wait.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	err := cmd.Run()
	if c.log != nil {
		c.log.Debug("zfs command", "args", cmd.Args, "took", time.Since(start), "err", err)
	}
	if err != nil {
		return c.cmdError(ctx, cmd, stderr.String(), err)
	}
	return nil
}

func isPipeError(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "broken pipe") || errors.Is(err, io.ErrClosedPipe))
}

// pools lists the imported pools.
func (c *cli) pools(ctx context.Context) ([]string, error) {
	out, err := c.run(ctx, c.zpool, "list", "-H", "-o", "name")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "no pools available" {
			names = append(names, l)
		}
	}
	return names, nil
}

func (c *cli) poolImport(ctx context.Context, dir, pool string, force bool) error {
	// cachefile=none: the node imports its pool from the data dir itself
	// on every start; a pool in the daemon's cache whose file is gone
	// would come back FAULTED after a daemon restart.
	args := []string{"import", "-o", "cachefile=none", "-d", dir}
	if force {
		args = append(args, "-f")
	}
	_, err := c.run(ctx, c.zpool, append(args, pool)...)
	return err
}

// poolCreate makes a pool on one file vdev, its root dataset unmounted.
func (c *cli) poolCreate(ctx context.Context, pool, file string) error {
	_, err := c.run(ctx, c.zpool, "create", "-o", "cachefile=none", "-m", "none", pool, file)
	return err
}
