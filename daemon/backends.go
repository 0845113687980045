package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/btrfs"
	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// backendSettings is what the backends of one node are opened with: the
// Config fields, with what the data directory remembers and the defaults
// filled in. It is also the JSON of DataDir/backends.json.
type backendSettings struct {
	Default  string   `json:"default"`             // canonical name
	Enabled  []string `json:"enabled"`             // canonical names, Default and dump among them
	ZFSPool  string   `json:"zfs_pool,omitempty"`  // zfs only
	ZFSRoot  string   `json:"zfs_root,omitempty"`  // zfs only; "" = <pool>/dmfs
	PoolSize int64    `json:"pool_size,omitempty"` // size of a new zfs pool file or btrfs image; 0 = default
	// TransferPin is Config.TransferPin, given each start (not saved).
	TransferPin time.Duration `json:"-"`
	// OpenWorktrees is Config's, given at each start, not remembered.
	OpenWorktrees bool `json:"-"`
	// Encrypt and Password are Config's Encrypt and StorePassword, given
	// at each start; the store itself says whether it is encrypted.
	Encrypt  bool   `json:"-"`
	Password []byte `json:"-"`
}

// opener opens one backend kind with its storage under s's data directory.
type opener func(ctx context.Context, dataDir string, s backendSettings, log *slog.Logger) (dotmesh.StorageBackend, error)

// backends are the kinds `dm serve --backend` accepts, by canonical name.
// Each keeps its storage in its own directory below the data directory.
var backends = map[string]opener{
	dumpName: func(_ context.Context, dataDir string, s backendSettings, log *slog.Logger) (dotmesh.StorageBackend, error) {
		return dump.Open(filepath.Join(dataDir, "dump"), dump.Options{Logger: log, PinTTL: s.TransferPin, OpenWorktrees: s.OpenWorktrees,
			Encrypt: s.Encrypt, Password: s.Password})
	},
	// zfs: the pool is imported as it is, or made from (or on) the sparse
	// file DataDir/zfs/dotmesh_data; branches mount below DataDir/zfs/mnt.
	zfs.Name: func(ctx context.Context, dataDir string, s backendSettings, log *slog.Logger) (dotmesh.StorageBackend, error) {
		b, err := zfs.Open(ctx, zfs.Options{
			Pool: s.ZFSPool, Root: s.ZFSRoot, PoolSize: s.PoolSize,
			DataDir: filepath.Join(dataDir, "zfs"), Logger: log,
		})
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return b, nil
	},
	// btrfs: DataDir/btrfs itself when it is on btrfs, else the sparse
	// image DataDir/btrfs/btrfs.img loop-mounted at DataDir/btrfs/btrfs
	// (unmounted again when the node stops).
	btrfs.Name: func(ctx context.Context, dataDir string, s backendSettings, log *slog.Logger) (dotmesh.StorageBackend, error) {
		b, err := btrfs.Open(ctx, btrfs.Options{DataDir: filepath.Join(dataDir, "btrfs"), PoolSize: s.PoolSize, Logger: log})
		if err != nil {
			return nil, err
		}
		return b, nil
	},
}

// dumpName is the dump backend's name, which dots record.
const dumpName = dump.Name

// aliases are other names users may give: "files" is what the dump backend
// is for most people, a plain directory of files.
var aliases = map[string]string{dump.UserName: dumpName}

// DefaultBackend is the backend of new dots unless Config.Backend says.
const DefaultBackend = dump.UserName

// settingsFile remembers, in the data directory, the backend settings the
// node last started with, so that a restart without flags (`dm cluster
// init` again) finds its dots' backends and pool as before.
const settingsFile = "backends.json"

// BackendNames lists the names Config.Backend accepts, sorted.
func BackendNames() []string {
	var names []string
	for n := range backends {
		names = append(names, n)
	}
	for a := range aliases {
		names = append(names, a)
	}
	sort.Strings(names)
	return names
}

// canonicalBackend resolves an alias and checks the name.
func canonicalBackend(name string) (string, error) {
	if c, ok := aliases[name]; ok {
		name = c
	}
	if _, ok := backends[name]; !ok {
		return "", fmt.Errorf("%w: unknown backend %q; choose one of %s", dotmesh.ErrInvalidArgument, name, strings.Join(BackendNames(), ", "))
	}
	return name, nil
}

// resolveSettings combines cfg, the settings remembered in dataDir (for
// each field cfg leaves zero) and the defaults. The dump backend is always
// enabled: it needs no root and no kernel feature.
func resolveSettings(cfg Config, dataDir string) (backendSettings, error) {
	var saved backendSettings
	if dataDir != "" {
		b, err := os.ReadFile(filepath.Join(dataDir, settingsFile))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return saved, fmt.Errorf("reading the backend settings: %w", err)
		default:
			if err := json.Unmarshal(b, &saved); err != nil {
				return saved, fmt.Errorf("%w: %s is not valid JSON (%v); fix or remove it and give the backend flags again", dotmesh.ErrCorrupt, filepath.Join(dataDir, settingsFile), err)
			}
		}
	}
	pick := func(given, remembered, def string) string {
		switch {
		case given != "":
			return given
		case remembered != "":
			return remembered
		}
		return def
	}
	s := backendSettings{
		ZFSPool:  pick(cfg.ZFSPool, saved.ZFSPool, ""), // "": zfs.DefaultPool
		ZFSRoot:  pick(cfg.ZFSRoot, saved.ZFSRoot, ""),
		PoolSize: cfg.PoolSize,

		TransferPin:   cfg.TransferPin,
		OpenWorktrees: cfg.OpenWorktrees,
		Encrypt:       cfg.Encrypt,
		Password:      cfg.StorePassword,
	}
	if s.PoolSize == 0 {
		s.PoolSize = saved.PoolSize
	}
	if s.PoolSize < 0 {
		return s, fmt.Errorf("%w: pool size %d is negative", dotmesh.ErrInvalidArgument, s.PoolSize)
	}
	var err error
	if s.Default, err = canonicalBackend(pick(cfg.Backend, saved.Default, DefaultBackend)); err != nil {
		return s, err
	}
	if s.Encrypt && s.Default != dumpName {
		return s, fmt.Errorf("%w: --encrypt seals the files backend's store only; the %s backend is not sealed by dotmesh (ZFS native encryption is not available in zfs-fuse): use --backend files, or put the %s pool on an encrypted disk (dm-crypt/LUKS)", dotmesh.ErrNotSupported, s.Default, s.Default)
	}
	more := cfg.EnableBackends
	if more == nil {
		more = saved.Enabled
	}
	s.Enabled = []string{dumpName}
	for _, n := range append([]string{s.Default}, more...) {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		c, err := canonicalBackend(n)
		if err != nil {
			return s, err
		}
		if !slices.Contains(s.Enabled, c) {
			s.Enabled = append(s.Enabled, c)
		}
	}
	return s, nil
}

// save writes s to dataDir for the next start.
func (s backendSettings) save(dataDir string) error {
	if err := saveSettings(filepath.Join(dataDir, settingsFile), s); err != nil {
		return fmt.Errorf("writing the backend settings: %w", err)
	}
	return nil
}

// openBackends opens every enabled backend; on failure those opened are
// closed again and the error says which backend failed and why.
func openBackends(ctx context.Context, dataDir string, s backendSettings, log *slog.Logger) ([]dotmesh.StorageBackend, error) {
	var opened []dotmesh.StorageBackend
	for _, name := range s.Enabled {
		be, err := backends[name](ctx, dataDir, s, log)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return nil, backendError(name, err)
		}
		opened = append(opened, be)
	}
	return opened, nil
}

// backendError makes a backend's failure to open one line that names the
// backend first (cluster init shows the last line of the node's log).
func backendError(name string, err error) error {
	if name == dumpName {
		return fmt.Errorf("the %s backend cannot start: %w", name, err)
	}
	const hint = "; or choose another backend (--backend files needs neither root nor a kernel feature)"
	if os.Geteuid() != 0 {
		return fmt.Errorf("the %s backend cannot start: it needs root (dm serve runs as uid %d; run it as root): %w%s", name, os.Geteuid(), err, hint)
	}
	return fmt.Errorf("the %s backend cannot start: %w%s", name, err, hint)
}

// StoreEncrypted reports whether the files (dump) store of the node in
// dataDir is encrypted at rest.
func StoreEncrypted(dataDir string) bool {
	return dump.IsEncrypted(filepath.Join(dataDir, "dump"))
}

// CheckStorePassword checks that password opens the encrypted files store
// of the node in dataDir (dump.ErrWrongPassword when not), changing
// nothing: so that a node started in the background fails at once.
func CheckStorePassword(dataDir string, password []byte) error {
	return dump.CheckPassword(filepath.Join(dataDir, "dump"), password)
}

// StoreKeys does op to the encrypted files store of the stopped node in
// dataDir, opened with password, and returns the id of a key added and
// the keys after it.
func StoreKeys(dataDir string, password []byte, op node.StoreKeyOp) (string, []node.StoreKey, error) {
	be, err := dump.Open(filepath.Join(dataDir, "dump"), dump.Options{Password: password, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return "", nil, err
	}
	defer be.Close()
	return op.Apply(context.Background(), be)
}
