package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dotmesh-io/dotmesh/client"
	etcdstore "github.com/dotmesh-io/dotmesh/cluster/etcd"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// Registry stores Config.Store accepts.
const (
	StoreBBolt = node.StoreBBolt // one node, the registry in DataDir/registry.db
	StoreEtcd  = node.StoreEtcd  // a cluster: many nodes share the registry in etcd
)

// clusterFile remembers, in the data directory, the store and cluster
// settings the node last started with (like backends.json), so that a
// restart needs no flags. It holds file names, never keys.
const clusterFile = "cluster.json"

// clusterSettings is Config's store and cluster fields with what the data
// directory remembers and the defaults filled in; the JSON of cluster.json.
type clusterSettings struct {
	Store         string   `json:"store"`
	EtcdEndpoints []string `json:"etcd_endpoints,omitempty"`
	EtcdCAFile    string   `json:"etcd_ca_file,omitempty"`
	EtcdCertFile  string   `json:"etcd_cert_file,omitempty"`
	EtcdKeyFile   string   `json:"etcd_key_file,omitempty"`
	EtcdPrefix    string   `json:"etcd_prefix,omitempty"`
	NodeID        string   `json:"node_id,omitempty"`
	Advertise     string   `json:"advertise,omitempty"`
	PeerCAFile    string   `json:"peer_ca_file,omitempty"`
}

func (s clusterSettings) etcd() bool { return s.Store == StoreEtcd }

// resolveClusterSettings combines cfg, cluster.json in dataDir and the
// defaults. A data directory stays with the store it was first used with:
// its backends hold the data of that registry's dots only.
func resolveClusterSettings(cfg Config, dataDir, listen string) (clusterSettings, error) {
	var saved clusterSettings
	b, err := os.ReadFile(filepath.Join(dataDir, clusterFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return saved, fmt.Errorf("reading the cluster settings: %w", err)
	default:
		if err := json.Unmarshal(b, &saved); err != nil {
			return saved, fmt.Errorf("%w: %s is not valid JSON (%v); fix or remove it and give the store flags again", dotmesh.ErrCorrupt, filepath.Join(dataDir, clusterFile), err)
		}
	}
	pick := func(given, remembered string) string {
		if given != "" {
			return given
		}
		return remembered
	}
	s := clusterSettings{
		Store:        pick(cfg.Store, saved.Store),
		EtcdCAFile:   pick(cfg.EtcdCAFile, saved.EtcdCAFile),
		EtcdCertFile: pick(cfg.EtcdCertFile, saved.EtcdCertFile),
		EtcdKeyFile:  pick(cfg.EtcdKeyFile, saved.EtcdKeyFile),
		EtcdPrefix:   pick(cfg.EtcdPrefix, saved.EtcdPrefix),
		NodeID:       pick(cfg.NodeID, saved.NodeID),
		Advertise:    pick(cfg.Advertise, saved.Advertise),
		PeerCAFile:   pick(cfg.PeerCAFile, saved.PeerCAFile),
	}
	s.EtcdEndpoints = cfg.EtcdEndpoints
	if len(s.EtcdEndpoints) == 0 {
		s.EtcdEndpoints = saved.EtcdEndpoints
	}
	if s.Store == "" {
		s.Store = StoreBBolt
	}
	switch s.Store {
	case StoreBBolt, StoreEtcd:
	default:
		return s, fmt.Errorf("%w: unknown store %q; choose bbolt (one node) or etcd (a cluster)", dotmesh.ErrInvalidArgument, s.Store)
	}
	if saved.Store != "" && saved.Store != s.Store {
		return s, fmt.Errorf("%w: the data directory %s belongs to a node on the %s store; it cannot move to %s (its storage holds that registry's dots): use another --data-dir", dotmesh.ErrInvalidArgument, dataDir, saved.Store, s.Store)
	}
	if !s.etcd() {
		if len(cfg.EtcdEndpoints) > 0 || cfg.NodeID != "" || cfg.Advertise != "" || cfg.ClusterKey != "" || cfg.EtcdPrefix != "" || cfg.EtcdCAFile != "" || cfg.EtcdCertFile != "" || cfg.EtcdKeyFile != "" || cfg.PeerCAFile != "" {
			return s, fmt.Errorf("%w: the etcd and cluster flags need --store etcd", dotmesh.ErrInvalidArgument)
		}
		return clusterSettings{Store: StoreBBolt}, nil
	}
	if len(s.EtcdEndpoints) == 0 {
		return s, fmt.Errorf("%w: --store etcd needs --etcd-endpoints URLS (e.g. http://10.0.0.1:2379,http://10.0.0.2:2379)", dotmesh.ErrInvalidArgument)
	}
	if (s.EtcdCertFile == "") != (s.EtcdKeyFile == "") {
		return s, fmt.Errorf("%w: --etcd-cert and --etcd-key go together", dotmesh.ErrInvalidArgument)
	}
	for i, f := range []*string{&s.EtcdCAFile, &s.EtcdCertFile, &s.EtcdKeyFile, &s.PeerCAFile} {
		if *f == "" {
			continue
		}
		abs, err := filepath.Abs(*f)
		if err != nil {
			return s, err
		}
		*f = abs
		_ = i
	}
	if saved.NodeID != "" && cfg.NodeID != "" && cfg.NodeID != saved.NodeID {
		return s, fmt.Errorf("%w: the data directory %s is node %s of its cluster; it keeps that id (--node-id %s is for a new data directory)", dotmesh.ErrInvalidArgument, dataDir, saved.NodeID, cfg.NodeID)
	}
	if s.NodeID == "" {
		h, err := os.Hostname()
		if err != nil {
			return s, fmt.Errorf("no --node-id given and the host name is unknown: %w", err)
		}
		s.NodeID, _, _ = strings.Cut(h, ".")
	}
	if err := dotmesh.ValidateName("node id", s.NodeID); err != nil {
		return s, fmt.Errorf("%w (the node id defaults to the host name; choose one with --node-id)", err)
	}
	if s.Advertise == "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return s, fmt.Errorf("%w: listen address %q: %v", dotmesh.ErrInvalidArgument, listen, err)
		}
		ip := net.ParseIP(host)
		if host == "" || (ip != nil && ip.IsUnspecified()) || port == "0" {
			return s, fmt.Errorf("%w: other nodes cannot reach --listen %s as it is; pass --advertise URL (e.g. http://10.0.0.1:32607)", dotmesh.ErrInvalidArgument, listen)
		}
		scheme := "http"
		if cfg.TLSCert != "" {
			scheme = "https"
		}
		s.Advertise = scheme + "://" + net.JoinHostPort(host, port)
	}
	if _, err := client.New(s.Advertise, "", "check"); err != nil {
		return s, fmt.Errorf("--advertise: %w", err)
	}
	return s, nil
}

// save writes s to dataDir for the next start.
func (s clusterSettings) save(dataDir string) error {
	if err := saveSettings(filepath.Join(dataDir, clusterFile), s); err != nil {
		return fmt.Errorf("writing the cluster settings: %w", err)
	}
	return nil
}

// openStore opens the registry the settings choose.
func openStore(ctx context.Context, dataDir string, cs clusterSettings, log *slog.Logger) (dotmesh.ClusterStore, error) {
	if !cs.etcd() {
		return openBBolt(dataDir, log)
	}
	st, err := etcdstore.Open(ctx, etcdstore.Options{
		Endpoints: cs.EtcdEndpoints,
		CAFile:    cs.EtcdCAFile,
		CertFile:  cs.EtcdCertFile,
		KeyFile:   cs.EtcdKeyFile,
		Prefix:    cs.EtcdPrefix,
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the registry in etcd: %w", err)
	}
	return st, nil
}

// lazyPeers is the node's dotmesh.Peers before the admin key is known: the
// node must exist to check the key against the registry, and the node
// needs its Peers to exist.
type lazyPeers struct {
	p atomic.Pointer[client.Peers]
}

func (l *lazyPeers) Peer(n dotmesh.NodeInfo) (dotmesh.Peer, error) {
	p := l.p.Load()
	if p == nil {
		return nil, fmt.Errorf("%w: the cluster's admin key is not loaded yet", dotmesh.ErrUnavailable)
	}
	return p.Peer(n)
}

// Alive reports whether anything accepts connections at the node's
// address (a URL): a node that was stopped (SIGSTOP) still counts, one
// that was killed does not. Nothing is sent, so no key or TLS is needed.
func (l *lazyPeers) Alive(ctx context.Context, n dotmesh.NodeInfo) bool {
	u, err := url.Parse(n.Address)
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// set makes the peers use key (and the CA in caFile for https nodes).
func (l *lazyPeers) set(key, caFile string) error {
	var opts []client.Option
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return fmt.Errorf("reading the CA of the other nodes (--peer-ca): %w", err)
		}
		opts = append(opts, client.WithCACert(pem))
	}
	p, err := client.NewPeers(key, opts...)
	if err != nil {
		return err
	}
	l.p.Store(p)
	return nil
}
