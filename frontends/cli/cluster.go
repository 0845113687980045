package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// dataDir resolves a --data-dir value to an absolute path, defaulting to
// ~/.dotmesh/data. Absolute, because the path is recorded in the config
// and passed to a process with another working directory.
func (a *app) dataDir(flag string) (string, error) {
	d := flag
	if d == "" {
		var err error
		if d, err = DefaultDataDir(a.io.Getenv); err != nil {
			return "", err
		}
	}
	return filepath.Abs(d)
}

func (a *app) serveCmd() *cobra.Command {
	var (
		dir, listen  string
		transferPin  time.Duration
		transferIdle time.Duration
		nf           nodeFlags
		bf           backendFlags
		df           dockerFlags
		tf           tlsFlags
		kf           csiFlags
		cf           clusterFlags
		of           opsFlags
		sf           storeCryptFlags
	)
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run a dotmesh node in the foreground",
		Long: `Run a dotmesh node: the engine behind its HTTP API, until SIGINT or
SIGTERM. Logs go to stderr. The node writes DIR/dm.pid and, on first
start, an admin API key to DIR/admin-api-key.

What the node writes is private to its user: DIR is made (or set) mode
0700, its files 0600. --open-worktrees lets services that run as another
local user reach the working trees (` + "`dm path`" + `): DIR and the directories on
the way become 0711 and the tree roots 0755; containers get the trees
bind-mounted and need not. Give it at every start.

Plain HTTP beyond loopback (a --listen address other than 127.x or ::1)
sends API keys and data in clear: it needs --tls-cert/--tls-key, or
--insecure to accept that. --listen and --insecure are remembered in
DIR/listen.json: a start without --listen listens where the last did.

The node also serves the same API (the same keys) on the unix socket
DIR/api.sock, mode 0600, as Docker serves docker.sock: a dm of the
node's user whose remote records DIR (the one ` + "`dm cluster init`" + ` writes)
dials it instead of the loopback TCP address. --no-api-socket turns it off.

` + "`dm cluster init`" + ` runs this in the background for you; run it directly under
a service manager or to watch the logs. The Debian package (make deb)
installs the systemd unit dotmesh.service, which runs the node as the
dotmesh user on /var/lib/dotmesh (systemctl enable --now dotmesh); for
zfs, btrfs, Docker and CSI, which need root, add its drop-in
/usr/share/doc/dotmesh/examples/root.conf (packaging/systemd/ in the
source). The image (make image) runs it in a container.

It also serves the Docker volume plugin on --docker-socket, so that
` + "`docker run --volume-driver dm -v app.db:/data ...`" + ` mounts subdot db of dot app
(the driver name is the socket's base name; --docker-socket "" disables
it). The plugin asks the Docker engine on $DOCKER_HOST (default
/var/run/docker.sock) for container names and restarts.

It serves a web UI under /ui/ on the API's address (a browser opening
the address is sent there): users sign in with their name and an API
key to browse the dots they may read, their history and files, and
manage sharing and keys. --no-ui turns it off.

Metrics and logs: Prometheus metrics (dotmesh_*, go_*, process_*) are
served at /metrics on the API's address to the admin (a read-only admin
key is enough: ` + "`dm key add --read-only --name prometheus`" + `), and with
--metrics-listen ADDR also on their own address without a key: loopback
only (127.0.0.1:9327, say), since anyone reaching it reads them, unless
--metrics-listen-public. Go's profiler is served to the admin under
/debug/pprof/ (` + "`go tool pprof -http : 'http://admin:KEY@HOST:PORT/debug/pprof/profile?seconds=30'`" + `);
--pprof=false turns it off. Every API request gets an id (a client's
X-Request-Id when it sends a sane one), answered in the X-Request-Id
header and in error bodies, and carried by every log line of the
request. Requests are logged at debug; failures at warn (4xx) or error
(5xx), with their status and error. --log-format json writes one JSON
object a line.

` + backendHelp + `

` + encryptHelp + `

` + clusterHelp,
		Example: `  dm serve --data-dir /var/lib/dotmesh --listen 0.0.0.0:32607 --tls-cert node.pem --tls-key node-key.pem
  dm serve --encrypt --password-file ~/.dotmesh/store-password
  dm serve --backend zfs --zfs-pool tank --pool-size 50G
  dm serve --backend btrfs --enable-backends zfs
  dm serve --csi-socket /var/lib/kubelet/plugins/dotmesh.io/csi.sock
  dm serve --store etcd --etcd-endpoints http://10.0.0.9:2379 --node-id n1 --listen 10.0.0.1:32607 --insecure
  dm serve --store etcd --etcd-endpoints http://10.0.0.9:2379 --node-id n2 --listen 10.0.0.2:32607 --insecure \
      --cluster-key-file /root/cluster-key`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := a.dataDir(dir)
			if err != nil {
				return err
			}
			// Serve (daemon.Run) creates the directory and locks DIR/dm.pid,
			// refusing a second node on the same data.
			//
			// Main already cancels on these; this covers embedders of
			// NewRootCommand.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if transferPin <= 0 {
				return fmt.Errorf("%w: --transfer-pin %s: give a positive duration such as 24h or 30m", dotmesh.ErrInvalidArgument, transferPin)
			}
			if transferIdle <= 0 {
				return fmt.Errorf("%w: --transfer-idle %s: give a positive duration such as 2m or 30s", dotmesh.ErrInvalidArgument, transferIdle)
			}
			logger, err := of.logger(a.io.Stderr)
			if err != nil {
				return err
			}
			if err := sf.check(bf.backend); err != nil {
				return err
			}
			password, err := a.storePassword(d, &sf)
			if err != nil {
				return err
			}
			cfg := node.Config{
				DataDir:      d,
				Listen:       listen,
				Logger:       logger,
				Version:      Version,
				TransferPin:  transferPin,
				TransferIdle: transferIdle,
				NoUI:         nf.noUI,
				NoAPISocket:  nf.noAPISocket,

				Insecure:      nf.insecure,
				OpenWorktrees: nf.openWorktrees,
				AnonymousRead: nf.anonymousRead,
				Ready: func(addr string) {
					logger.Info("dotmesh node ready", "addr", addr, "data_dir", d, "pid", os.Getpid())
				},
			}
			bf.apply(&cfg)
			sf.apply(&cfg, password)
			df.apply(&cfg, a.io.Getenv)
			tf.apply(&cfg)
			kf.apply(&cfg)
			of.apply(&cfg)
			if err := cf.apply(&cfg); err != nil {
				return err
			}
			if err := notWired(a.nodes.Serve != nil); err != nil {
				return err
			}
			return a.nodes.Serve(ctx, cfg)
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "data-dir", "", "data directory `DIR` (default ~/.dotmesh/data)")
	f.StringVar(&listen, "listen", "", "listen on `ADDR` (HOST:PORT) for the HTTP API (default: where the node in DIR last listened, else "+node.DefaultListen+")")
	f.DurationVar(&transferIdle, "transfer-idle", api.TransferIdleTimeout, "cut an incoming commit stream that sent nothing for this `LONG`; the push fails and stores nothing")
	f.DurationVar(&transferPin, "transfer-pin", dotmesh.DefaultTransferPin, "keep what an interrupted incoming transfer received for a re-run this `LONG` after its last byte; then `dm gc` removes it")
	nf.add(f)
	bf.add(f)
	df.add(f)
	tf.add(f)
	kf.add(f)
	cf.add(f, true)
	of.add(f)
	sf.add(f)
	return c
}

func (a *app) clusterCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "cluster",
		Short: "Start, stop and reset the local node; join and list cluster nodes",
		Long: `Manage the dotmesh node on this machine: ` + "`init`" + ` starts it in the background
and points dm at it as the remote "local"; ` + "`join`" + ` does the same for a node
that joins an etcd cluster; ` + "`stop`" + ` stops it; ` + "`reset`" + ` stops it and forgets
it on the client side, keeping its data; ` + "`nodes`" + ` lists the nodes of the
current remote's cluster.`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.clusterInitCmd(false), a.clusterInitCmd(true), a.clusterStopCmd(), a.clusterResetCmd(), a.clusterNodesCmd())
	return c
}

// clusterInitCmd is `dm cluster init`, or with join `dm cluster join`:
// both start a node in the background and make it the remote "local".
func (a *app) clusterInitCmd(join bool) *cobra.Command {
	var (
		dir     string
		listen  string
		nf      nodeFlags
		bf      backendFlags
		df      dockerFlags
		tf      tlsFlags
		cf      clusterFlags
		of      opsFlags
		sf      storeCryptFlags
		port    int
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "init",
		Short: "Start a local node and make it the current remote",
		Long: `Start a dotmesh node (` + "`dm serve`" + `) in the background on 127.0.0.1:PORT with
its data in DIR, wait until it answers, and write the client config with a
remote named "local" that holds its address and admin API key, made the
current remote. The node's log is DIR/dm.log.

Running it again on the same data directory after ` + "`dm cluster stop`" + ` restarts
the node with all its dots. It refuses when a node already runs there.

The backend flags are passed to ` + "`dm serve`" + ` (see ` + "`dm serve --help`" + `): files
(the default), zfs or btrfs. When the backend cannot start, the error says
what it lacks. So are --log-level, --log-format, --memory-limit,
--metrics-listen, --metrics-listen-public and --pprof.

With --store etcd it starts the first node of a cluster and prints how the
other nodes join (` + "`dm cluster join`" + `, with a copy of DIR/admin-api-key).
Give --listen (and --advertise when other machines reach it by another
address) so that the other nodes can reach it.

With --tls-cert/--tls-key the node serves HTTPS, and the remote "local"
pins --tls-ca (default: the certificate itself); its certificate must name
the address dm calls (127.0.0.1, or the --listen host). The three are
remembered in DIR/tls.json (file names), so a restart without them serves
HTTPS again, with the files as they are then; --no-tls restarts it on
plain HTTP and forgets them.

--encrypt (first start only) seals the files store at rest: the password
is asked here (or read from --password-file or $` + storePasswordEnv + `) at
every start of an encrypted node, checked at once, and handed to the
background node on a pipe, never written to disk or its command line.

` + encryptHelp + ``,
		Example: `  dm cluster init
  dm cluster init --data-dir /srv/dotmesh --port 32608
  dm cluster init --backend zfs --zfs-pool tank
  dm cluster init --backend btrfs --pool-size 20G
  dm cluster init --encrypt
  dm cluster init --store etcd --etcd-endpoints http://10.0.0.9:2379 --node-id n1 --listen 10.0.0.1:32607 --insecure
  dm cluster init --listen 10.0.0.1:32607 --tls-cert node.pem --tls-key node-key.pem --tls-ca ca.pem`,
		Args: usageArgs(0, 0),
	}
	if join {
		c.Use = "join"
		c.Short = "Start a local node that joins an etcd cluster"
		c.Long = `Start a dotmesh node (` + "`dm serve --store etcd`" + `) in the background that joins
the cluster whose registry is in etcd at --etcd-endpoints, and make it the
remote "local", as ` + "`dm cluster init`" + ` does. --cluster-key-file is a copy of the
admin-api-key file of a node of the cluster (every node shares that key;
the node checks it against the cluster's before using it). The node lists
the cluster's dots at once and copies their commits in the background.

Give --listen (and --advertise when other machines reach it by another
address) so that the other nodes can reach it, and --node-id when the host
name is not a unique node name: an id that a live node holds is refused,
naming that node's address. Running it again on the same data
directory restarts the node; the flags are remembered. --tls-cert,
--tls-key, --tls-ca and --no-tls work as for ` + "`dm cluster init`" + ` (give the
other nodes --peer-ca).`
		c.Example = `  dm cluster join --etcd-endpoints http://10.0.0.9:2379 --cluster-key-file ./cluster-key \
      --node-id n2 --listen 10.0.0.2:32607 --insecure
  dm cluster join --etcd-endpoints https://10.0.0.9:2379 --etcd-ca ca.pem --cluster-key-file ./cluster-key \
      --node-id n2 --listen 10.0.0.2:32607 --tls-cert n2.pem --tls-key n2-key.pem --tls-ca ca.pem --peer-ca ca.pem`
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if port < 1 || port > 65535 {
			return fmt.Errorf("%w: --port %d must be from 1 to 65535", dotmesh.ErrInvalidArgument, port)
		}
		if err := bf.validate(); err != nil {
			return err
		}
		if err := sf.check(bf.backend); err != nil {
			return err
		}
		if join {
			if len(cf.endpoints) == 0 || cf.keyFile == "" {
				return fmt.Errorf("%w: dm cluster join needs --etcd-endpoints and --cluster-key-file (a copy of a cluster node's admin-api-key)", dotmesh.ErrInvalidArgument)
			}
			cf.store = node.StoreEtcd
		}
		if err := cf.validate(); err != nil {
			return err
		}
		d, err := a.dataDir(dir)
		if err != nil {
			return err
		}
		if err := tf.recall(d); err != nil {
			return err
		}
		tlsArgs, pinned, err := tf.serveArgs()
		if err != nil {
			return err
		}
		cfgPath, err := a.configPath()
		if err != nil {
			return err
		}
		cfg, err := LoadConfig(cfgPath)
		if err != nil {
			return err // fail before starting anything
		}
		if err := notWired(a.nodes.NodeRunning != nil, a.nodes.MakeDataDir != nil, a.nodes.RememberedListen != nil, a.nodes.StartNode != nil); err != nil {
			return err
		}
		// Replacing "local" while its node still runs would leave that
		// node running with nothing pointing at it.
		if old, ok := cfg.Remotes[LocalRemote]; ok && old.DataDir != "" && old.DataDir != d {
			if pid, running, _ := a.nodes.NodeRunning(old.DataDir); running {
				return kinded(dotmesh.ErrInUse, fmt.Errorf("remote %q is the node in %s (pid %d), which still runs; `dm cluster stop` it first, or use another config with -c", LocalRemote, old.DataDir, pid))
			}
		}
		if err := a.nodes.MakeDataDir(d); err != nil {
			return err
		}
		if pid, running, err := a.nodes.NodeRunning(d); err != nil {
			return err
		} else if running {
			return kinded(dotmesh.ErrInUse, fmt.Errorf("a node already runs in %s (pid %d); `dm cluster stop` stops it", d, pid))
		}
		password, err := a.storePassword(d, &sf)
		if err != nil {
			return err
		}
		if password != nil && a.nodes.StoreEncrypted(d) {
			if err := notWired(a.nodes.CheckStorePassword != nil); err != nil {
				return err
			}
			if err := a.nodes.CheckStorePassword(d, password); err != nil {
				return err
			}
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		switch {
		case listen != "":
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return fmt.Errorf("%w: --listen %q must be HOST:PORT", dotmesh.ErrInvalidArgument, listen)
			}
			addr = listen
		case !cmd.Flags().Changed("port"):
			// A restart listens where the node last did.
			remembered, insecure, err := a.nodes.RememberedListen(d)
			if err != nil {
				return err
			}
			if remembered != "" {
				addr = remembered
				nf.insecure = nf.insecure || insecure
			}
		}
		clusterArgs, err := cf.args()
		if err != nil {
			return err
		}
		if join {
			clusterArgs = append(clusterArgs, "--store=etcd")
		}
		opsArgs, err := of.args()
		if err != nil {
			return err
		}
		serveArgs := append(append(append(append(append(nf.args(), bf.args()...), df.args()...), clusterArgs...), tlsArgs...), opsArgs...)
		if sf.encrypt {
			serveArgs = append(serveArgs, "--encrypt")
		}
		if password != nil {
			// The node reads it from the pipe startNode gives as its stdin.
			serveArgs = append(serveArgs, "--password-file=/dev/stdin")
		}
		r, pid, err := a.startNode(cmd.Context(), d, addr, serveArgs, pinned, timeout, password)
		if err != nil {
			return err
		}
		if err := tf.remember(d); err != nil {
			return fmt.Errorf("node started (pid %d) but its TLS flags could not be remembered: %w", pid, err)
		}
		// Reload: keep whatever changed meanwhile, and the current dot
		// when this is a restart of the same node.
		cfg, err = LoadConfig(cfgPath)
		if err != nil {
			return err
		}
		if old, ok := cfg.Remotes[LocalRemote]; ok && old.DataDir == d {
			r.CurrentDot = old.CurrentDot
		}
		cfg.Remotes[LocalRemote] = r
		cfg.CurrentRemote = LocalRemote
		if err := SaveConfig(cfgPath, cfg); err != nil {
			return fmt.Errorf("node started (pid %d) but the config could not be written: %w", pid, err)
		}
		keyPath := filepath.Join(d, node.AdminKeyFile)
		if a.jsonOut {
			out := map[string]any{"pid": pid, "address": addr, "data_dir": d, "config": cfgPath}
			if cf.store == node.StoreEtcd {
				out["cluster_key_file"] = keyPath
			}
			return writeJSON(a.out(), out)
		}
		a.info("Started a dotmesh node (pid %d) on %s with data in %s.", pid, addr, d)
		a.info("Remote %q is now the current remote (config %s).", LocalRemote, cfgPath)
		if cf.store == node.StoreEtcd && !join {
			a.info("Other nodes join this cluster with a copy of the cluster key %s (keep it secret):", keyPath)
			a.info("  dm cluster join --etcd-endpoints %s --cluster-key-file FILE --node-id ID --listen ADDR", strings.Join(cf.endpoints, ","))
			if host, _, err := net.SplitHostPort(addr); err == nil {
				if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && cf.advertise == "" {
					a.info("This node listens on %s, which only this machine reaches: nodes on other machines need --listen/--advertise.", addr)
				}
			}
		}
		return nil
	}
	f := c.Flags()
	f.StringVar(&dir, "data-dir", "", "data directory `DIR` of the node (default ~/.dotmesh/data)")
	f.IntVar(&port, "port", api.DefaultPort, "`PORT` of the node's HTTP API on 127.0.0.1 (default: where the node in DIR last listened, else 32607)")
	f.StringVar(&listen, "listen", "", "listen on `ADDR` (HOST:PORT) instead of 127.0.0.1:PORT")
	nf.add(f)
	bf.add(f)
	df.add(f)
	tf.add(f)
	tf.addCA(f)
	tf.addOff(f)
	cf.add(f, !join)
	of.add(f)
	sf.add(f)
	f.DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the node to answer")
	return c
}

// startNode starts `dm serve` in the background (Wiring.StartNode) and
// waits until it answers with its admin key; caPEM, when set, is the CA
// of its HTTPS certificate, stdin what the node reads on its stdin. It returns the remote that reaches it.
func (a *app) startNode(ctx context.Context, dir, addr string, serveArgs []string, caPEM string, timeout time.Duration, stdin []byte) (*Remote, int, error) {
	base := &Remote{User: api.AdminUser, Address: addr, DataDir: dir, TLS: caPEM != "", CACert: caPEM}
	probe := []client.Option{client.WithTimeout(2 * time.Second)}
	if caPEM != "" {
		probe = append(probe, client.WithCACert([]byte(caPEM)))
	}
	var ready *Remote
	pid, err := a.nodes.StartNode(ctx, node.StartSpec{
		DataDir: dir,
		Args:    append([]string{"serve", "--data-dir", dir, "--listen", addr}, serveArgs...),
		Addr:    addr,
		Timeout: timeout,
		Stdin:   stdin,
		Ready: func(ctx context.Context) (err error) {
			ready, err = answers(ctx, probe, base)
			return err
		},
	})
	if err != nil {
		return nil, 0, err
	}
	return ready, pid, nil
}

// answers returns base with the admin key when the node answers GET
// /healthz (a client with the options probe) and a ping with that key.
func answers(ctx context.Context, probe []client.Option, base *Remote) (*Remote, error) {
	if err := client.Healthz(ctx, base.URL(), probe...); err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(base.DataDir, node.AdminKeyFile))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API key: %w", err)
	}
	r := *base
	r.APIKey = strings.TrimSpace(string(key))
	if err := pingRemote(ctx, LocalRemote, &r); err != nil {
		// Another node on that port would answer /healthz but refuse
		// our key; ours then fails to listen and exits, which the
		// next poll reports.
		return nil, err
	}
	return &r, nil
}

// localDataDir finds the data dir of the local node: the flag, else the
// one recorded in the config, else the default.
func (a *app) localDataDir(flag string, cfg *Config) (string, error) {
	if flag == "" {
		if r, ok := cfg.Remotes[LocalRemote]; ok && r.DataDir != "" {
			return r.DataDir, nil
		}
	}
	return a.dataDir(flag)
}

func (a *app) clusterStopCmd() *cobra.Command {
	var (
		dir     string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "stop",
		Short: "Stop the local node",
		Long: `Stop the node ` + "`dm cluster init`" + ` started: send SIGTERM to the process in
DIR/dm.pid, wait for it to exit, and send SIGKILL after --timeout. The data
directory is the one recorded in the config unless --data-dir is given.
Stopping a node that does not run is not an error.`,
		Example: `  dm cluster stop
  dm cluster stop --data-dir /srv/dotmesh`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			d, err := a.localDataDir(dir, cfg)
			if err != nil {
				return err
			}
			return a.stopNode(d, timeout)
		},
	}
	c.Flags().StringVar(&dir, "data-dir", "", "data directory `DIR` of the node (default: the one in the config)")
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait after SIGTERM before SIGKILL")
	return c
}

// stopNode stops the node in dir, if one runs (Wiring.StopNode), and
// says what it did.
func (a *app) stopNode(dir string, timeout time.Duration) error {
	if err := notWired(a.nodes.StopNode != nil); err != nil {
		return err
	}
	st, err := a.nodes.StopNode(dir, timeout)
	switch {
	case err != nil:
		return err
	case st.PID == 0:
		a.info("No node runs in %s.", dir)
	case st.Killed:
		a.info("Killed the node in %s (pid %d): it did not stop within %s.", dir, st.PID, timeout)
	default:
		a.info("Stopped the node in %s (pid %d).", dir, st.PID)
	}
	return nil
}

func (a *app) clusterResetCmd() *cobra.Command {
	var (
		dir     string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "reset",
		Short: "Stop the local node and forget it on the client side",
		Long: `Stop the local node (as ` + "`dm cluster stop`" + `) and remove the "local" remote
from the client config; the config file goes when no remote is left. The
node's data directory is kept: ` + "`dm cluster init`" + ` on it brings everything back.`,
		Example: `  dm cluster reset`,
		Args:    usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			d, err := a.localDataDir(dir, cfg)
			if err != nil {
				return err
			}
			if err := a.stopNode(d, timeout); err != nil {
				return err
			}
			if cfg, err = LoadConfig(path); err != nil {
				return err
			}
			delete(cfg.Remotes, LocalRemote)
			if cfg.CurrentRemote == LocalRemote {
				cfg.CurrentRemote = ""
			}
			if len(cfg.Remotes) == 0 {
				if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			} else if err := SaveConfig(path, cfg); err != nil {
				return err
			}
			a.info("Removed remote %q; the data stays in %s.", LocalRemote, d)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "data-dir", "", "data directory `DIR` of the node (default: the one in the config)")
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait after SIGTERM before SIGKILL")
	return c
}
