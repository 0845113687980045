package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// clusterFlags are the registry and cluster flags of `dm serve`; `dm
// cluster init` and `dm cluster join` take them too and pass those given
// on to the serve they start.
type clusterFlags struct {
	store                     string
	endpoints                 []string
	etcdCA, etcdCert, etcdKey string
	prefix                    string
	nodeID, advertise, peerCA string
	keyFile                   string
	set                       func(name string) bool
}

// clusterHelp explains the flags in the long help of serve, init and join.
const clusterHelp = `Cluster mode. With --store etcd, nodes share one registry of dots in etcd
(--etcd-endpoints): every node lists the same dots, every commit is copied
to every node in the background, and each branch's uncommitted state lives
on one node, its master; writing the branch on another node moves it
there (committing what was uncommitted). Every node of a cluster uses the
same admin API key: the first node makes it, the others are given it with
--cluster-key-file (a copy of the first node's DIR/admin-api-key). The
node's id (--node-id, default the host name) and the URL other nodes reach
it at (--advertise, default http(s)://LISTEN) are remembered in DIR, like
the store flags, so a restart needs none. See README "Cluster mode" for
TLS to etcd and between nodes. The CSI plugin of a cluster node (dm serve
--csi-socket) serves every volume on every node: a pod mounting one moves
its branch to the pod's node (README "Cluster mode on Kubernetes").`

func (c *clusterFlags) add(f *pflag.FlagSet, withStore bool) {
	if withStore {
		f.StringVar(&c.store, "store", "", "registry `STORE`: bbolt (one node) or etcd (a cluster) (default bbolt, or what DIR last used)")
	}
	f.StringSliceVar(&c.endpoints, "etcd-endpoints", nil, "etcd client `URLS`, comma-separated (e.g. https://10.0.0.1:2379,https://10.0.0.2:2379)")
	f.StringVar(&c.etcdCA, "etcd-ca", "", "PEM CA `FILE` that signed etcd's server certificate (https endpoints)")
	f.StringVar(&c.etcdCert, "etcd-cert", "", "PEM client certificate `FILE` for etcd --client-cert-auth; needs --etcd-key")
	f.StringVar(&c.etcdKey, "etcd-key", "", "PEM private key `FILE` of --etcd-cert")
	f.StringVar(&c.prefix, "etcd-prefix", "", "key `PREFIX` in etcd, to keep several clusters apart (default /dotmesh/)")
	f.StringVar(&c.nodeID, "node-id", "", "this node's `ID` in the cluster (default: the host name)")
	f.StringVar(&c.advertise, "advertise", "", "`URL` the other nodes reach this node's API at (default http(s)://LISTEN)")
	f.StringVar(&c.peerCA, "peer-ca", "", "PEM CA `FILE` of the other nodes' HTTPS certificates (when they serve --tls-cert)")
	f.StringVar(&c.keyFile, "cluster-key-file", "", "`FILE` holding the cluster's admin API key, to join a cluster (a copy of a node's admin-api-key)")
	c.set = func(name string) bool { return f.Lookup(name) != nil && f.Changed(name) }
}

// apply sets the daemon's fields, reading the cluster key file.
func (c *clusterFlags) apply(cfg *node.Config) error {
	cfg.Store = c.store
	cfg.EtcdEndpoints = append([]string{}, c.endpoints...)
	cfg.EtcdCAFile, cfg.EtcdCertFile, cfg.EtcdKeyFile = c.etcdCA, c.etcdCert, c.etcdKey
	cfg.EtcdPrefix, cfg.NodeID, cfg.Advertise, cfg.PeerCAFile = c.prefix, c.nodeID, c.advertise, c.peerCA
	if c.keyFile != "" {
		key, err := readClusterKey(c.keyFile)
		if err != nil {
			return err
		}
		cfg.ClusterKey = key
	}
	return nil
}

func readClusterKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the cluster key (--cluster-key-file): %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" || strings.ContainsAny(key, " \t\r\n") {
		return "", fmt.Errorf("%w: %s does not hold a key (one line); use a copy of a cluster node's admin-api-key", dotmesh.ErrInvalidArgument, path)
	}
	return key, nil
}

// validate checks what can be checked before a node is started.
func (c *clusterFlags) validate() error {
	if c.store != "" && c.store != node.StoreBBolt && c.store != node.StoreEtcd {
		return fmt.Errorf("%w: unknown --store %q; choose bbolt or etcd", dotmesh.ErrInvalidArgument, c.store)
	}
	if c.nodeID != "" {
		if err := dotmesh.ValidateName("node id", c.nodeID); err != nil {
			return err
		}
	}
	if c.keyFile != "" {
		if _, err := readClusterKey(c.keyFile); err != nil {
			return err
		}
	}
	return nil
}

// args are the flags given, for the `dm serve` init and join start. File
// names are made absolute: serve runs in /.
func (c *clusterFlags) args() ([]string, error) {
	var out []string
	abs := func(p string) (string, error) {
		if p == "" {
			return p, nil
		}
		return filepath.Abs(p)
	}
	for _, f := range []struct {
		name, value string
		file        bool
	}{
		{"store", c.store, false}, {"etcd-endpoints", strings.Join(c.endpoints, ","), false},
		{"etcd-ca", c.etcdCA, true}, {"etcd-cert", c.etcdCert, true}, {"etcd-key", c.etcdKey, true},
		{"etcd-prefix", c.prefix, false}, {"node-id", c.nodeID, false}, {"advertise", c.advertise, false},
		{"peer-ca", c.peerCA, true}, {"cluster-key-file", c.keyFile, true},
	} {
		if !c.set(f.name) {
			continue
		}
		v := f.value
		if f.file {
			var err error
			if v, err = abs(v); err != nil {
				return nil, err
			}
		}
		out = append(out, "--"+f.name+"="+v)
	}
	return out, nil
}

// nodeFlags are `dm serve`'s flags about what the node exposes; `dm
// cluster init/join` pass them on.
type nodeFlags struct {
	insecure, openWorktrees, anonymousRead, noUI, noAPISocket bool
}

func (n *nodeFlags) add(f *pflag.FlagSet) {
	f.BoolVar(&n.insecure, "insecure", false, "allow plain HTTP on a --listen address beyond loopback (API keys and data cross the network in clear; prefer --tls-cert/--tls-key)")
	f.BoolVar(&n.openWorktrees, "open-worktrees", false, "let other local users reach the working trees, for services running as another user (the data directory becomes 0711 instead of 0700)")
	f.BoolVar(&n.anonymousRead, "anonymous-read", false, "let API calls without credentials read the dots made public (made so with dm dot visibility NS/DOT public)")
	f.BoolVar(&n.noUI, "no-ui", false, "do not serve the web UI under /ui/")
	f.BoolVar(&n.noAPISocket, "no-api-socket", false, "do not also serve the API on the unix socket DIR/"+node.APISocketFile+" (mode 0600), which a dm of the node's user on this machine dials instead of TCP")
}

func (n *nodeFlags) args() []string {
	var out []string
	if n.insecure {
		out = append(out, "--insecure")
	}
	if n.openWorktrees {
		out = append(out, "--open-worktrees")
	}
	if n.anonymousRead {
		out = append(out, "--anonymous-read")
	}
	if n.noUI {
		out = append(out, "--no-ui")
	}
	if n.noAPISocket {
		out = append(out, "--no-api-socket")
	}
	return out
}
