package zfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// findTools locates zfs and zpool. The sbin directories are searched too:
// they are often missing from a service's PATH.
func findTools(timeout time.Duration) (*cli, error) {
	c := &cli{timeout: timeout}
	for _, t := range []struct {
		name string
		dst  *string
	}{{"zfs", &c.zfs}, {"zpool", &c.zpool}} {
		p, err := exec.LookPath(t.name)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
				if st, serr := os.Stat(filepath.Join(dir, t.name)); serr == nil && st.Mode().IsRegular() {
					p, err = filepath.Join(dir, t.name), nil
					break
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the %s command was not found: install ZFS (Debian: apt-get install zfs-fuse, or OpenZFS's zfsutils-linux)", dotmesh.ErrUnavailable, t.name)
		}
		*t.dst = p
	}
	return c, nil
}

// daemonHint explains ErrNoDaemon for the two ZFS flavours.
func daemonHint(err error) error {
	if !errors.Is(err, ErrNoDaemon) {
		return err
	}
	var ce *CmdError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, "zfs-fuse") {
		return fmt.Errorf("%w: zfs-fuse is not running: start it with `zfs-fuse` or install zfs-fuse (%v)", dotmesh.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: ZFS is not available: load the kernel module (modprobe zfs), or start zfs-fuse (%v)", dotmesh.ErrUnavailable, err)
}

// openPool makes sure the pool is imported: as it is, by importing
// DataDir/dotmesh_data, or by creating that file and a pool on it.
func (b *Backend) openPool(ctx context.Context, opts Options) error {
	pools, err := b.z.pools(ctx)
	if err != nil {
		return daemonHint(err)
	}
	if slices.Contains(pools, opts.Pool) {
		return nil
	}
	if opts.DataDir == "" {
		return fmt.Errorf("%w: pool %s is not imported and no data directory was given to find or create it in", dotmesh.ErrNotFound, opts.Pool)
	}
	file := filepath.Join(opts.DataDir, PoolFile)
	if _, err := os.Stat(file); err == nil {
		b.log.InfoContext(ctx, "importing pool", "pool", opts.Pool, "file", file)
		err := b.z.poolImport(ctx, opts.DataDir, opts.Pool, false)
		var ce *CmdError
		if errors.As(err, &ce) && strings.Contains(ce.Stderr, "-f") {
			// Not exported cleanly (the daemon or host died): the file is
			// ours, in our data directory, so forcing is safe.
			b.log.WarnContext(ctx, "pool was not exported cleanly; importing with -f", "pool", opts.Pool)
			err = b.z.poolImport(ctx, opts.DataDir, opts.Pool, true)
		}
		if err != nil {
			return fmt.Errorf("importing pool %s from %s: %w", opts.Pool, file, err)
		}
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pool file: %w", err)
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating pool file: %w", err)
	}
	err = f.Truncate(opts.PoolSize) // sparse: takes no space until written
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		b.log.InfoContext(ctx, "creating file-backed pool", "pool", opts.Pool, "file", file, "size", opts.PoolSize)
		err = b.z.poolCreate(ctx, opts.Pool, file)
	}
	if err != nil {
		_ = os.Remove(file)
		return fmt.Errorf("creating pool %s on %s: %w", opts.Pool, file, err)
	}
	return nil
}
