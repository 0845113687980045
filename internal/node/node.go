// Package node holds the plain values that describe a dotmesh node to the
// code that runs it (package daemon) and to the code that asks for it
// (the dm command): its configuration, the names of files in its data
// directory, and what starting, stopping and repairing it report. It
// imports no store, backend or server, so that a frontend can fill these
// from its flags while cmd/dm wires in the daemon that acts on them.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// DefaultListen is where the API listens unless Config.Listen says.
var DefaultListen = fmt.Sprintf("127.0.0.1:%d", api.DefaultPort)

// Config configures a node: what `dm serve` runs (package daemon) and
// what the dm command fills from its flags.
type Config struct {
	// DataDir is required; it is made, or its mode set, 0700 (0711 with
	// OpenWorktrees), so that only the node's user reads what is in it.
	DataDir string
	// Encrypt makes a new files (dump) store encrypted at rest with
	// StorePassword, which also opens a store that is encrypted. Neither
	// is remembered: whether a store is encrypted is in the store.
	Encrypt       bool
	StorePassword []byte
	// Listen is the API's TCP address; default: the one the node last
	// listened on in DataDir (DATADIR/listen.json), else DefaultListen.
	// Plain HTTP beyond loopback needs Insecure (TLSCert otherwise).
	Listen   string
	Insecure bool
	// NoAPISocket turns off the local API socket, DATADIR/api.sock
	// (APISocketFile), which otherwise serves the same API over plain
	// HTTP to the node's own user.
	NoAPISocket bool
	// AnonymousRead lets API calls without credentials read public dots
	// (server.Options.AnonymousRead).
	AnonymousRead bool
	// OpenWorktrees lets other local users reach the working trees, for
	// services that run as another user and use them directly (containers
	// get them bind-mounted, and need not): the data directory and the
	// directories on the way can be traversed, not listed, and tree roots
	// read.
	OpenWorktrees bool
	// Backend is the backend of new dots: "files" (alias of "dump"),
	// "dump", "zfs" or "btrfs". The dump backend always runs too.
	Backend string
	// EnableBackends are more backends to run, for dots created with an
	// explicit backend and those made before a change of Backend.
	EnableBackends []string
	// ZFSPool is the ZFS pool (default "pool"), imported as it is or made
	// on the sparse file DataDir/zfs/dotmesh_data; ZFSRoot the dataset
	// under it that holds the dots (default "<pool>/dmfs").
	ZFSPool, ZFSRoot string
	// PoolSize is the size in bytes of a new zfs pool file or btrfs image
	// (sparse; default 10 GiB).
	//
	// Backend, EnableBackends (when nil) and these three (when zero)
	// default to what the node last started with in DataDir, so a restart
	// needs no flags.
	PoolSize int64
	// TransferPin is how long an interrupted incoming transfer's data is
	// kept for a re-run after its last byte (0: dotmesh.DefaultTransferPin);
	// then gc removes it.
	TransferPin time.Duration
	// TransferIdle is how long an incoming commit stream may send
	// nothing before it is cut (0: api.TransferIdleTimeout).
	TransferIdle time.Duration
	Logger       *slog.Logger
	Version      string
	// DockerSocket is where the Docker volume plugin listens (`dm serve`
	// defaults to docker.DefaultSocket); empty serves no plugin.
	// DockerEngine is the Docker engine API socket the plugin asks for
	// container names and restarts through; empty: docker.DefaultEngine.
	DockerSocket, DockerEngine string
	// CSISocket is where the Kubernetes CSI plugin listens; empty serves
	// none. CSINodeID names this node in CSI topology (default: host name).
	CSISocket, CSINodeID string
	// TLSCert and TLSKey (PEM files), when set, make the API serve HTTPS
	// only; clients pin the CA with `dm remote add --ca-cert`.
	TLSCert, TLSKey string
	// NoUI turns off the web UI that is otherwise served under /ui/ on
	// the API listener.
	NoUI bool
	// Store is the registry: "bbolt" (default; one node, in DataDir) or
	// "etcd" (a cluster: nodes sharing EtcdEndpoints). EtcdCAFile verifies
	// etcd's certificate; EtcdCertFile and EtcdKeyFile are the client
	// certificate etcd may demand; EtcdPrefix keeps several clusters
	// apart in one etcd (default "/dotmesh/").
	Store                                 string
	EtcdEndpoints                         []string
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string
	EtcdPrefix                            string
	// NodeID names the node in its cluster (default: the host name, up to
	// its first dot). Advertise is the URL the other nodes reach this
	// node's API at (default http(s)://Listen). PeerCAFile is the CA of the
	// other nodes' HTTPS certificates, when they serve HTTPS.
	NodeID, Advertise, PeerCAFile string
	// ClusterKey is the cluster's admin API key, which every node shares
	// (they call each other with it): given to a node joining a cluster,
	// checked against the registry and written to DataDir/admin-api-key.
	//
	// The store and cluster fields (not ClusterKey) default to what the
	// node last started with in DataDir, like the backend fields.
	ClusterKey string
	// Ready, when set, is called once with the address listened on, when
	// the API accepts requests (tests listen on port 0 and read it here).
	Ready func(addr string)
	// MetricsListen, when set, serves the metrics alone at /metrics on
	// this HOST:PORT without authentication (they are always served to
	// the admin at /metrics on the API's address too). Beyond loopback
	// it needs MetricsListenPublic. MetricsReady, when set, is called
	// with the address it listens on.
	MetricsListen       string
	MetricsListenPublic bool
	MetricsReady        func(addr string)
	// NoProfiler turns off Go's profiler, otherwise served to the admin
	// under /debug/pprof/ on the API's address.
	NoProfiler bool
	// MemoryLimit, when above 0, is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit): near it the collector runs more
	// often rather than letting the heap reach twice its live data,
	// which bounds a node's peak memory during a commit or checkout of
	// many files. Above it the node still runs, the collector capped at
	// half the CPU. 0 leaves the runtime's setting (GOMEMLIMIT) alone.
	MemoryLimit int64
}

// Registry stores Config.Store accepts.
const (
	StoreBBolt = "bbolt" // one node, the registry in DataDir/registry.db
	StoreEtcd  = "etcd"  // a cluster: many nodes share the registry in etcd
)

// APISocketFile is the unix socket in the data directory on which a node
// also serves its API (mode 0600: the node's user only; the API key is
// still required), as Docker's docker.sock: a dm on the same machine skips
// TCP's connect and teardown (0.1-0.15 ms of every command).
const APISocketFile = "api.sock"

// AdminKeyFile is the file in the data directory that holds the node's
// admin API key.
const AdminKeyFile = "admin-api-key"

// RebuildResult reports what rebuilding a node's registry did.
type RebuildResult struct {
	dotmesh.RebuildStats
	Registry string // the new registry file
	// KeptAside is where the old registry file was moved (empty when
	// there was none).
	KeptAside string
}

// StoreKey is a key (one password) of a node's encrypted files store.
type StoreKey = dotmesh.StoreKey

// StoreKeyOp is what `dm store key` does to an encrypted files store
// opened with a password it knows: add NewPassword, or remove key Remove
// (Force: also the key that opened it), or neither (list).
type StoreKeyOp struct {
	NewPassword []byte
	Remove      string
	Force       bool
}

// Apply does op with m (a stopped node's store opened by dm, or a running
// node's API) and returns the id of a key added and the keys after it.
func (op StoreKeyOp) Apply(ctx context.Context, m dotmesh.StoreKeyManager) (string, []StoreKey, error) {
	var (
		added string
		err   error
	)
	switch {
	case op.NewPassword != nil:
		added, err = m.AddStoreKey(ctx, op.NewPassword)
	case op.Remove != "":
		err = m.RemoveStoreKey(ctx, op.Remove, op.Force)
	}
	if err != nil {
		return "", nil, err
	}
	keys, err := m.StoreKeys(ctx)
	if err != nil {
		return "", nil, err
	}
	return added, keys, nil
}

// StartSpec says how to start a node in the background.
type StartSpec struct {
	// DataDir is the node's data directory; its output goes to
	// DataDir/dm.log.
	DataDir string
	// Args are the arguments after the program name with which the
	// running program is started again to serve the node ("serve
	// --data-dir DIR ...").
	Args []string
	// Addr is where the node listens, for messages.
	Addr string
	// Timeout bounds the wait for Ready.
	Timeout time.Duration
	// Stdin, when set, is written to the node's standard input (a pipe):
	// how a password reaches it without touching disk or the command line.
	Stdin []byte
	// Ready reports whether the node answers yet; it is polled until it
	// returns nil, the node exits or Timeout passes.
	Ready func(ctx context.Context) error
}

// Stopped reports what stopping a node did.
type Stopped struct {
	PID    int  // the node's process; 0 when none ran
	Killed bool // it did not stop within the timeout and got SIGKILL
}
