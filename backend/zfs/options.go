package zfs

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/internal/fusesock"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Name is the key the backend registers under; dots record it.
const Name = "zfs"

// Defaults for Options.
const (
	DefaultPool     = "pool"
	DefaultPoolSize = int64(10 << 30)
	// PoolFile is the name of the sparse file backing a pool this backend
	// creates, inside DataDir (as the original dotmesh did).
	PoolFile = "dotmesh_data"
	// DefaultCommandLock is the command lock with zfs-fuse; see
	// Options.CommandLock.
	DefaultCommandLock = "/run/lock/dotmesh-zfs-fuse.lock"
	// NoCommandLock as Options.CommandLock turns the lock off.
	NoCommandLock = "none"
	// DefaultFuseSocket is zfs-fuse's command socket; see
	// Options.FuseSocket.
	DefaultFuseSocket = fusesock.DefaultPath
	// NoFuseSocket as Options.FuseSocket leaves every snapshot, send and
	// receive to the zfs command.
	NoFuseSocket = "none"
	// minPoolSize is the smallest vdev zpool accepts.
	minPoolSize = int64(64 << 20)
)

// Options configure Open.
type Options struct {
	// Pool is the ZFS pool; DefaultPool when empty. If it is not imported,
	// DataDir/dotmesh_data is imported when it exists, else created.
	Pool string
	// DataDir holds the pool file and, by default, the mountpoints.
	// Required unless Mountpoint is set and the pool is already imported.
	DataDir string
	// PoolSize is the size of a new pool file (sparse); DefaultPoolSize
	// when 0.
	PoolSize int64
	// Root is the dataset under which dots live; "<Pool>/dmfs" when empty.
	// It must be inside Pool. Tests use one Root per backend on a shared
	// pool.
	Root string
	// Mountpoint is the directory where branches are mounted, as
	// Mountpoint/<dot id>/<branch>; DataDir/mnt when empty.
	Mountpoint string
	// CommandTimeout bounds each zfs command that does not stream data;
	// 5 minutes when 0.
	CommandTimeout time.Duration
	// CommandLock is a file that commands changing ZFS state (all but
	// listings and send/receive streams) hold locked while they run, so
	// that they run one at a time, also across processes: zfs-fuse
	// deadlocks when several run at once (see cmdlock.go). Empty means
	// DefaultCommandLock with zfs-fuse, no lock with OpenZFS; NoCommandLock
	// never locks. A missing directory of the file is made.
	CommandLock string
	// FuseSocket is zfs-fuse's command socket, through which a commit
	// takes its snapshot, and a direct push sends and receives, instead
	// of running the zfs command, whose start costs more than the
	// snapshot (see package fusesock). Empty means DefaultFuseSocket
	// with zfs-fuse when it exists at Open, none with OpenZFS;
	// NoFuseSocket never. A daemon that does not answer there, or speaks
	// another layout (Open asks), gets the command.
	FuseSocket string
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Pool == "" {
		o.Pool = DefaultPool
	}
	if err := validPool(o.Pool); err != nil {
		return err
	}
	if o.PoolSize == 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.PoolSize < minPoolSize {
		return fmt.Errorf("%w: pool size %d is below the %d bytes zpool needs", dotmesh.ErrInvalidArgument, o.PoolSize, minPoolSize)
	}
	if o.Root == "" {
		o.Root = o.Pool + "/dmfs"
	}
	root, err := parseDataset(o.Root)
	if err != nil {
		return err
	}
	if root.Pool() != o.Pool || root.String() == o.Pool {
		return fmt.Errorf("%w: root dataset %q must be a dataset inside pool %q", dotmesh.ErrInvalidArgument, o.Root, o.Pool)
	}
	// Room for "/<dot id>/<branch>.recv-<suffix>@<commit id>".
	if len(o.Root)+1+32+1+dotmesh.MaxNameLength+len(".recv-")+suffixLen+1+32 > maxDatasetName {
		return fmt.Errorf("%w: root dataset %q is too long to hold dot, branch and commit names", dotmesh.ErrInvalidArgument, o.Root)
	}
	if o.DataDir != "" {
		if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
			return fmt.Errorf("%w: data directory: %v", dotmesh.ErrInvalidArgument, err)
		}
	}
	if o.Mountpoint == "" {
		if o.DataDir == "" {
			return fmt.Errorf("%w: the zfs backend needs a data directory (or an explicit mountpoint)", dotmesh.ErrInvalidArgument)
		}
		o.Mountpoint = filepath.Join(o.DataDir, "mnt")
	}
	if o.Mountpoint, err = filepath.Abs(o.Mountpoint); err != nil {
		return fmt.Errorf("%w: mountpoint: %v", dotmesh.ErrInvalidArgument, err)
	}
	if o.Mountpoint == "/" || strings.ContainsAny(o.Mountpoint, "\x00\n\t") {
		return fmt.Errorf("%w: mountpoint %q is not usable", dotmesh.ErrInvalidArgument, o.Mountpoint)
	}
	switch o.FuseSocket {
	case "":
		o.FuseSocket = defaultFuseSocket()
	case NoFuseSocket:
		o.FuseSocket = ""
	}
	switch o.CommandLock {
	case "":
		o.CommandLock = defaultCommandLock()
	case NoCommandLock:
		o.CommandLock = ""
	default:
		if !filepath.IsAbs(o.CommandLock) {
			return fmt.Errorf("%w: command lock %q is not an absolute path", dotmesh.ErrInvalidArgument, o.CommandLock)
		}
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}
