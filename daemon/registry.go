package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// RegistryFile is the local (bbolt) registry in the data directory.
const RegistryFile = "registry.db"

// refusedError is the one line a start refused for its local registry
// prints: the file, the way out first (`dm cluster init` shows the line
// cut short), then what is wrong. It wraps the cause (ErrCorrupt, and
// ErrRegistryLost when the registry lacks dots).
type refusedError struct {
	msg   string
	cause error
}

func (e *refusedError) Error() string { return e.msg }
func (e *refusedError) Unwrap() error { return e.cause }

func refuseRegistry(dataDir, what, reason string, cause error) error {
	return &refusedError{
		msg: fmt.Sprintf("registry %s %s; nothing was changed: run `dm registry rebuild --data-dir %s` (%s)",
			filepath.Join(dataDir, RegistryFile), what, dataDir, reason),
		cause: cause,
	}
}

// RebuildResult reports what RebuildRegistry did.
type RebuildResult = node.RebuildResult

// RebuildRegistry rebuilds the local (bbolt) registry of the node in
// cfg.DataDir from the records its backends keep beside their data. The
// node must be stopped. A registry that opens and holds dots is left
// alone; any other registry file is renamed aside with a timestamp, never
// deleted. On failure the old file is put back. In a cluster the registry
// is etcd, which this does not rebuild.
func RebuildRegistry(ctx context.Context, cfg Config) (RebuildResult, error) {
	var res RebuildResult
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.DataDir == "" {
		return res, fmt.Errorf("%w: no data directory given", dotmesh.ErrInvalidArgument)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return res, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	if fi, err := os.Stat(dataDir); err != nil || !fi.IsDir() {
		return res, fmt.Errorf("%w: %s is not a data directory of a node (--data-dir)", dotmesh.ErrNotFound, dataDir)
	}
	cs, err := resolveClusterSettings(cfg, dataDir, DefaultListen)
	if err != nil {
		return res, err
	}
	if cs.etcd() {
		return res, fmt.Errorf("%w: the registry of the node in %s is etcd, which a rebuild does not cover: restore etcd from its backup", dotmesh.ErrNotSupported, dataDir)
	}
	settings, err := resolveSettings(cfg, dataDir)
	if err != nil {
		return res, err
	}
	pid, err := lockPIDFile(dataDir)
	if err != nil {
		return res, err
	}
	defer func() {
		if err := pid.release(); err != nil {
			log.Warn("removing the pid file", "err", err)
		}
	}()

	res.Registry = filepath.Join(dataDir, RegistryFile)
	if _, err := os.Stat(res.Registry); err == nil {
		if n, err := healthyDots(ctx, res.Registry, log); err == nil && n > 0 {
			return res, fmt.Errorf("%w: registry %s is healthy and holds %d dots; nothing to rebuild", dotmesh.ErrAlreadyExists, res.Registry, n)
		}
		res.KeptAside = fmt.Sprintf("%s.damaged-%s", res.Registry, time.Now().UTC().Format("20060102T150405.000000000Z"))
		if err := os.Rename(res.Registry, res.KeptAside); err != nil {
			return res, fmt.Errorf("keeping the old registry aside: %w", err)
		}
		log.Info("kept the old registry aside", "file", res.KeptAside)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("%w: registry %s: %w", dotmesh.ErrUnavailable, res.Registry, err)
	}
	res.RebuildStats, err = rebuildInto(ctx, res.Registry, dataDir, settings, log)
	if err != nil {
		// Leave things as they were, so that the rebuild can be retried.
		os.Remove(res.Registry)
		if res.KeptAside != "" {
			if rerr := os.Rename(res.KeptAside, res.Registry); rerr != nil {
				log.Warn("putting the old registry back", "file", res.KeptAside, "err", rerr)
			}
		}
		return res, fmt.Errorf("rebuilding registry %s: %w", res.Registry, err)
	}
	return res, nil
}

// healthyDots counts the dots of a registry file that opens cleanly.
func healthyDots(ctx context.Context, path string, log *slog.Logger) (int, error) {
	st, err := bboltstore.Open(path, bboltstore.Options{Logger: log, Timeout: 5 * time.Second})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	n, err := dotmesh.CountDots(ctx, st)
	return n, err
}

func rebuildInto(ctx context.Context, path, dataDir string, settings backendSettings, log *slog.Logger) (dotmesh.RebuildStats, error) {
	st, err := bboltstore.Open(path, bboltstore.Options{Logger: log, Timeout: 5 * time.Second})
	if err != nil {
		return dotmesh.RebuildStats{}, err
	}
	defer st.Close()
	bes, err := openBackends(ctx, dataDir, settings, log)
	if err != nil {
		return dotmesh.RebuildStats{}, err
	}
	defer func() {
		for _, be := range bes {
			be.Close()
		}
	}()
	return dotmesh.RebuildRegistry(ctx, st, bes)
}
