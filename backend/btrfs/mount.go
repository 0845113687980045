//go:build linux && cgo

package btrfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

const btrfsMagic = 0x9123683e

// pool is the btrfs filesystem the backend keeps its layout in: DataDir
// itself when that is on btrfs, else a loop-mounted image file in it.
type pool struct {
	root    string // where the layout lives
	image   string // image file, when file-backed
	loopDev string // loop device this process attached, to detach in Close
	mounted bool   // this process mounted root, so Close unmounts it
	atime   bool   // reads update atimes, which dirty detection counts
}

// hasAtime reports whether reads may update access times under path.
func hasAtime(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return true
	}
	return st.Flags&unix.ST_NOATIME == 0
}

func isBtrfs(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	return uint32(st.Type) == btrfsMagic, nil
}

// errNoProgs is returned when a btrfs-progs tool is missing.
var errNoProgs = fmt.Errorf("%w: btrfs-progs is not installed (apt-get install btrfs-progs)", dotmesh.ErrUnavailable)

// needTools checks that the named programs are on PATH.
func needTools(names ...string) error {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if n == "btrfs" || n == "mkfs.btrfs" {
				return fmt.Errorf("%w (%s not found)", errNoProgs, n)
			}
			return fmt.Errorf("%w: %s not found (apt-get install util-linux mount)", dotmesh.ErrUnavailable, n)
		}
	}
	return nil
}

// openPool finds or makes the filesystem for dataDir and mounts it when
// needed. An image mounted by an earlier process that died is reused, and
// then left mounted on Close, as found.
func openPool(ctx context.Context, dataDir string, size int64) (*pool, error) {
	if err := needTools("btrfs"); err != nil {
		return nil, err
	}
	on, err := isBtrfs(dataDir)
	if err != nil {
		return nil, err
	}
	if on {
		return &pool{root: dataDir, atime: hasAtime(dataDir)}, nil
	}
	p := &pool{root: filepath.Join(dataDir, "btrfs"), image: filepath.Join(dataDir, "btrfs.img")}
	if err := os.MkdirAll(p.root, 0o755); err != nil {
		return nil, fmt.Errorf("create mount point: %w", err)
	}
	if mounted, err := isMountedBtrfs(p.root, dataDir); err != nil || mounted {
		p.atime = hasAtime(p.root)
		return p, err
	}
	if err := needTools("mkfs.btrfs", "losetup", "mount", "umount"); err != nil {
		return nil, err
	}
	if _, err := os.Stat(p.image); errors.Is(err, os.ErrNotExist) {
		if err := makeImage(ctx, p.image, size); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("btrfs image %s: %w", p.image, err)
	}
	dev, attached, err := attachLoop(ctx, p.image)
	if err != nil {
		return nil, err
	}
	// noatime: an atime update changes the subvolume's generation, which
	// would make a read look like an uncommitted change.
	if out, err := run(ctx, "mount", "-t", "btrfs", "-o", "noatime", dev, p.root); err != nil {
		if attached {
			_, _ = run(context.WithoutCancel(ctx), "losetup", "-d", dev)
		}
		return nil, fmt.Errorf("%w: mounting btrfs image %s at %s: %s (mounting needs root or CAP_SYS_ADMIN; or give a data directory that is on btrfs already)", dotmesh.ErrUnavailable, p.image, p.root, out)
	}
	if attached {
		p.loopDev = dev
	}
	p.mounted = true
	return p, nil
}

// isMountedBtrfs reports whether dir is a btrfs mount on top of parent.
func isMountedBtrfs(dir, parent string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Stat(dir, &a); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Stat(parent, &b); err != nil {
		return false, fmt.Errorf("stat %s: %w", parent, err)
	}
	if a.Dev == b.Dev {
		return false, nil
	}
	on, err := isBtrfs(dir)
	if err != nil {
		return false, err
	}
	if !on {
		return false, fmt.Errorf("%w: %s is a mount point of another filesystem, not btrfs", dotmesh.ErrConflict, dir)
	}
	return true, nil
}

// makeImage creates a sparse image and formats it, under a temporary name
// so that a crash never leaves a half-made image behind.
func makeImage(ctx context.Context, image string, size int64) error {
	tmp := image + ".new"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create btrfs image: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("create btrfs image: %w", err)
	}
	if out, err := run(ctx, "mkfs.btrfs", "-q", tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: mkfs.btrfs %s: %s", dotmesh.ErrUnavailable, tmp, out)
	}
	if err := os.Rename(tmp, image); err != nil {
		return fmt.Errorf("create btrfs image: %w", err)
	}
	return syncDir(filepath.Dir(image))
}

// attachLoop returns a loop device backed by image: one already attached
// (by a process that died before mounting), or a new one.
func attachLoop(ctx context.Context, image string) (dev string, attached bool, err error) {
	out, err := run(ctx, "losetup", "-j", image)
	if err != nil {
		return "", false, fmt.Errorf("%w: losetup -j %s: %s", dotmesh.ErrUnavailable, image, out)
	}
	if line, _, _ := strings.Cut(out, "\n"); strings.HasPrefix(line, "/dev/") {
		dev, _, _ := strings.Cut(line, ":")
		return dev, true, nil
	}
	out, err = run(ctx, "losetup", "--find", "--show", image)
	if err != nil {
		return "", false, fmt.Errorf("%w: attaching %s to a loop device: %s (loop devices need root and the loop module)", dotmesh.ErrUnavailable, image, out)
	}
	return strings.TrimSpace(out), true, nil
}

// close unmounts what openPool mounted and detaches its loop device.
func (p *pool) close() error {
	if !p.mounted {
		return nil
	}
	ctx := context.Background()
	if out, err := run(ctx, "umount", p.root); err != nil {
		return fmt.Errorf("%w: unmounting %s: %s", dotmesh.ErrInUse, p.root, out)
	}
	p.mounted = false
	if p.loopDev != "" {
		if out, err := run(ctx, "losetup", "-d", p.loopDev); err != nil {
			return fmt.Errorf("detaching %s: %s", p.loopDev, out)
		}
	}
	return nil
}

// run runs a command and returns its combined output, trimmed.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
