// Package daemon runs a dotmesh node: what `dm serve` does. It wires the
// concrete store and backend chosen by configuration into a dotmesh.Node
// and serves it over HTTP until its context ends.
//
// It also supervises a node in the background for `dm cluster init`,
// `join` and `stop`: StartNode, StopNode and the pid file that says
// whether one runs (NodeRunning). cmd/dm passes these to the CLI, which imports nothing of
// this package.
//
// Memory: a node sets the Go runtime's soft memory limit to
// Config.MemoryLimit (`dm serve --memory-limit`, 256 MiB by default).
// Without it the heap may grow to twice its live data between
// collections; a commit or checkout of 500,000 small files then peaked
// well above restic's backup of the same tree. The limit only makes the
// collector run sooner: a node whose live data exceed it keeps working,
// the collector capped at half the CPU.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/hooks"
	"github.com/dotmesh-io/dotmesh/internal/node"
	"github.com/dotmesh-io/dotmesh/metrics"
	"github.com/dotmesh-io/dotmesh/server"
)

// Config configures Run and RebuildRegistry. It is defined in
// internal/node so that the dm command can fill it from its flags without
// importing this package.
type Config = node.Config

// DefaultListen is where the API listens unless Config.Listen says.
var DefaultListen = node.DefaultListen

// How long shutdown waits for requests in flight (a commit, say) before
// cutting them off.
const drainTimeout = 30 * time.Second

// Run opens the node in cfg.DataDir and serves its API until ctx is done,
// then stops accepting requests, drains those in flight and closes the
// node. It returns nil after a clean shutdown.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	// Every line logged with a request's context carries its id.
	log = slog.New(server.LogHandler(log.Handler()))
	if err := checkMetricsListen(cfg); err != nil {
		return err
	}
	if cfg.DataDir == "" {
		return fmt.Errorf("%w: no data directory given", dotmesh.ErrInvalidArgument)
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	ls, err := resolveListen(cfg, dataDir)
	if err != nil {
		return err
	}
	listen := ls.Listen
	settings, err := resolveSettings(cfg, dataDir)
	if err != nil {
		return err
	}
	cs, err := resolveClusterSettings(cfg, dataDir, listen)
	if err != nil {
		return err
	}
	if err := makeDataDir(dataDir, cfg.OpenWorktrees); err != nil {
		return err
	}
	pid, err := lockPIDFile(dataDir)
	if err != nil {
		return err
	}
	defer func() {
		if err := pid.release(); err != nil {
			log.Warn("removing the pid file", "err", err)
		}
	}()

	peers := &lazyPeers{}
	m := metrics.New(metrics.Options{Version: cfg.Version, Logger: log})
	node, _, err := openNode(ctx, dataDir, settings, cs, peers, cfg.Version, log, m)
	if err != nil {
		if _, ok := errors.AsType[*dotmesh.NodeIDInUseError](err); ok {
			return fmt.Errorf("%w; give this node its own --node-id (the default is the host name)", err)
		}
		return err
	}
	if err := settings.save(dataDir); err != nil {
		log.Warn("the next start will need the backend flags again", "err", err)
	}
	if err := cs.save(dataDir); err != nil {
		log.Warn("the next start will need the store flags again", "err", err)
	}
	defer func() {
		if err := node.Close(); err != nil {
			log.Warn("closing the node", "err", err)
		}
	}()
	m.Watch(node)
	stopSchedules := startSchedules(ctx, node) // stopped before the node closes
	defer stopSchedules()
	var created bool
	if cs.etcd() {
		var key string
		key, created, err = server.EnsureClusterAdminKey(ctx, node, dataDir, cfg.ClusterKey)
		if err != nil {
			return err
		}
		if err := peers.set(key, cs.PeerCAFile); err != nil {
			return err
		}
		go func() { _ = node.Cluster().Sync(ctx) }() // the first pass ran without the key
	} else {
		_, created, err = server.EnsureAdminKey(ctx, node, dataDir)
		if err != nil {
			return err
		}
	}
	keyPath := filepath.Join(dataDir, server.AdminKeyFile)
	if created {
		log.Info("wrote a new admin API key", "file", keyPath)
	} else {
		log.Info("using the admin API key", "file", keyPath)
	}

	stopDocker, err := serveDocker(cfg, node, dataDir, log)
	if err != nil {
		return err
	}
	defer stopDocker()
	stopCSI, err := serveCSI(cfg, node, log)
	if err != nil {
		return err
	}
	defer stopCSI()
	stopMetrics, err := serveMetrics(cfg, m, log)
	if err != nil {
		return err
	}
	defer stopMetrics()

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("%w: listening on %s: %w (is another dm serve running? choose another address with --listen)", dotmesh.ErrUnavailable, listen, err)
	}
	if cfg.TLSCert == "" && !api.LoopbackAddr(listen) {
		log.Warn("--insecure: the API listens beyond this machine over plain HTTP; API keys can be read on the network", "addr", ln.Addr().String())
	}
	if err := ls.save(dataDir, ln.Addr().String()); err != nil {
		log.Warn("the next start will need --listen again", "err", err)
	}
	handler, err := withUI(cfg, node, server.New(node, server.Options{Logger: log, Version: cfg.Version, BackendAliases: aliases, AnonymousRead: cfg.AnonymousRead,
		Metrics: m.Handler(), Profiler: !cfg.NoProfiler, TransferIdle: cfg.TransferIdle}), log)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // bodies are at most 1 MiB
		// No WriteTimeout: a commit of a large dot may take minutes before
		// the answer is written; clients bound calls with their own ctx.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		ln.Close()
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", dotmesh.ErrInvalidArgument)
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading the TLS certificate and key: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	sock, err := listenAPISocket(cfg, dataDir, log)
	if err != nil {
		ln.Close()
		return err
	}
	go func() { served <- srv.Serve(ln) }()
	if sock != nil {
		serveAPISocket(srv, sock, log)
	}
	log.Info("dotmesh node serving", "addr", ln.Addr().String(), "data", dataDir, "backend", settings.Default, "backends", strings.Join(settings.Enabled, ","), "store", cs.Store, "version", cfg.Version)
	if cs.etcd() {
		log.Info("cluster node", "node", cs.NodeID, "advertise", cs.Advertise, "etcd", strings.Join(cs.EtcdEndpoints, ","))
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}

	select {
	case err := <-served:
		return fmt.Errorf("serving the API: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests", "timeout", drainTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running after the drain timeout; closing them", "err", err)
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("serving the API", "err", err)
	}
	return nil
}

// openNode opens the registry and the backends and builds the node, which
// reconciles them. On failure everything opened is closed again.
func openNode(ctx context.Context, dataDir string, s backendSettings, cs clusterSettings, peers dotmesh.Peers, version string, log *slog.Logger, obs dotmesh.Observer) (*dotmesh.Node, dotmesh.ClusterStore, error) {
	regPath := filepath.Join(dataDir, RegistryFile)
	_, statErr := os.Stat(regPath)
	store, err := openStore(ctx, dataDir, cs, log)
	if err != nil {
		return nil, nil, err
	}
	bes, err := openBackends(ctx, dataDir, s, log)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	paths, err := makePathsDir(dataDir, s.OpenWorktrees)
	if err != nil {
		for _, be := range bes {
			be.Close()
		}
		store.Close()
		return nil, nil, err
	}
	opts := dotmesh.Options{
		Store:          store,
		Backends:       bes,
		DefaultBackend: s.Default,
		Logger:         log,
		TransferPin:    s.TransferPin,
		PathsDir:       paths,
		Observer:       obs,
		Hooks:          hooks.New(log),
	}
	if cs.etcd() {
		opts.Cluster = &dotmesh.ClusterOptions{NodeID: cs.NodeID, Address: cs.Advertise, Peers: peers, Version: version}
	}
	node, err := dotmesh.NewNode(ctx, opts)
	if err != nil {
		for _, be := range bes {
			be.Close()
		}
		store.Close()
		if errors.Is(err, dotmesh.ErrRegistryLost) {
			if cs.etcd() {
				return nil, nil, fmt.Errorf("the etcd registry: %w; the node did not start and changed nothing: restore etcd from its backup (`dm registry rebuild` covers only a local registry)", err)
			}
			if errors.Is(statErr, fs.ErrNotExist) {
				os.Remove(regPath) // made by this start: leave nothing behind
			}
			return nil, nil, refuseRegistry(dataDir, "holds no dots while the backends hold data", strings.TrimPrefix(err.Error(), dotmesh.ErrRegistryLost.Error()+": "), err)
		}
		return nil, nil, err
	}
	return node, store, nil
}

func openBBolt(dataDir string, log *slog.Logger) (dotmesh.ClusterStore, error) {
	store, err := bboltstore.Open(filepath.Join(dataDir, RegistryFile), bboltstore.Options{Logger: log, Timeout: 5 * time.Second})
	var damaged *bboltstore.DamagedError
	if errors.As(err, &damaged) {
		return nil, refuseRegistry(dataDir, "is damaged", damaged.Reason, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the registry in %s: %w", dataDir, err)
	}
	return store, nil
}

// PathsDir is the directory of the node's stable paths in the data
// directory: PathsDir/NAMESPACE/DOT links to the working tree of the
// dot's current branch (dotmesh.Options.PathsDir).
const PathsDir = "dots"

// makePathsDir makes DATADIR/dots with the modes of working trees' parents:
// 0700, or 0711 with openWorktrees (others may pass, not list).
func makePathsDir(dataDir string, openWorktrees bool) (string, error) {
	dir := filepath.Join(dataDir, PathsDir)
	mode := os.FileMode(0o700)
	if openWorktrees {
		mode = 0o711
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("making the directory of stable paths %s: %w", dir, err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return "", fmt.Errorf("setting the mode of %s to %o: %w", dir, mode, err)
	}
	return dir, nil
}

// makeDataDir makes the data directory, or tightens one that exists (made
// by an operator, a package or a mount, often 0755): 0700, or 0711 with
// openWorktrees, whatever the umask.
func makeDataDir(dir string, openWorktrees bool) error {
	mode := os.FileMode(0o700)
	if openWorktrees {
		mode = 0o711
	}
	if err := MakeDataDir(dir); err != nil {
		return err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("making the data directory %s private (mode %o): %w; run dm serve as its owner, or choose another --data-dir", dir, mode, err)
	}
	return nil
}
