package cli

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// backendFlags are the storage flags of `dm serve`; `dm cluster init`
// takes the same and passes those given on to the serve it starts.
type backendFlags struct {
	backend  string
	enable   []string
	zfsPool  string
	zfsRoot  string
	poolSize sizeFlag
	set      func(name string) bool // whether a flag was given
}

// backendHelp explains the flags in the long help of both commands.
const backendHelp = `Storage backends. Each dot records the backend it was created on; a node
runs the dump backend (alias files: plain directories, deduplicated dumps;
no root, no kernel feature) always, plus the default --backend and any
--enable-backends:

  files  (default) in DIR/dump.
  zfs    one ZFS filesystem per branch, one snapshot per commit. Needs root
         and ZFS (OpenZFS, or zfs-fuse: apt-get install zfs-fuse, then run
         zfs-fuse). Uses pool --zfs-pool if imported, else imports or
         creates a sparse --pool-size file DIR/zfs/dotmesh_data holding it;
         branches are mounted below DIR/zfs/mnt.
  btrfs  one subvolume per branch, one read-only snapshot per commit. Needs
         btrfs-progs; when DIR is not on btrfs, a sparse --pool-size image
         DIR/btrfs/btrfs.img is made and loop-mounted at DIR/btrfs/btrfs
         (root needed), and unmounted when the node stops.

The backend flags not given default to what the node last used in DIR, so
a restart needs none.`

func (b *backendFlags) add(f *pflag.FlagSet) {
	f.StringVar(&b.backend, "backend", "", "default storage `BACKEND` of new dots: files, zfs or btrfs (default files, or what DIR last used)")
	f.StringSliceVar(&b.enable, "enable-backends", nil, "more `BACKENDS` to run, comma-separated (e.g. zfs,btrfs), for dots made with `dm init --backend`")
	f.StringVar(&b.zfsPool, "zfs-pool", "", "ZFS `POOL` of the zfs backend (default \"pool\")")
	f.StringVar(&b.zfsRoot, "zfs-root", "", "ZFS `DATASET` in the pool that holds the dots (default POOL/dmfs)")
	f.Var(&b.poolSize, "pool-size", "size of a new zfs pool file or btrfs image, sparse: bytes or 10G, 512M... (default 10G)")
	b.set = func(name string) bool { return f.Changed(name) }
}

// validate checks the names before a node is started with them.
func (b *backendFlags) validate() error {
	for _, n := range append([]string{b.backend}, b.enable...) {
		if n == "" {
			continue
		}
		if err := dotmesh.ValidateName("backend", n); err != nil {
			return err
		}
	}
	return nil
}

// apply sets the daemon's fields; those not given stay zero, meaning "as
// last time, else the default".
func (b *backendFlags) apply(c *node.Config) {
	c.Backend, c.ZFSPool, c.ZFSRoot, c.PoolSize = b.backend, b.zfsPool, b.zfsRoot, int64(b.poolSize)
	if b.set("enable-backends") {
		c.EnableBackends = append([]string{}, b.enable...)
	}
}

// args are the flags given, for the `dm serve` cluster init starts.
func (b *backendFlags) args() []string {
	var out []string
	for _, f := range []struct{ name, value string }{
		{"backend", b.backend}, {"zfs-pool", b.zfsPool}, {"zfs-root", b.zfsRoot},
		{"pool-size", b.poolSize.String()}, {"enable-backends", strings.Join(b.enable, ",")},
	} {
		if b.set(f.name) {
			out = append(out, "--"+f.name+"="+f.value)
		}
	}
	return out
}
