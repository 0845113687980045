package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func isTerminal(fd int) bool { return term.IsTerminal(fd) }

// subcommandArgs rejects arguments to a command whose arguments are its
// subcommands, naming the unknown one.
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return kinded(errUsage, fmt.Errorf("unknown command %q for %q (see '%s --help')", args[0], c.CommandPath(), c.CommandPath()))
	}
	return nil
}

func (a *app) remoteCmd() *cobra.Command {
	var verbose bool
	c := &cobra.Command{
		Use:   "remote [-v]",
		Short: "List, add, remove and switch remotes",
		Long: `A remote is a dotmesh node (or cluster) dm talks to, with the user and
API key to use, or a bucket in object storage (s3://, file://) that holds
dots (see ` + "`dm remote add --help`" + `). Without a subcommand, list the remotes;
the current one is marked with *. -v adds their users and addresses, and
buckets' URLs (never keys, credentials or passwords).

The remotes live in the client config (~/.dotmesh/config, or -c FILE, or
$DOTMESH_CONFIG).`,
		Example: `  dm remote -v
  DOTMESH_PASSWORD=$KEY dm remote add prod admin@dm.example.com
  dm remote add backup s3://my-bucket/dotmesh
  dm remote switch prod`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			type item struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				User    string `json:"user,omitempty"`
				Address string `json:"address,omitempty"`
				// A bucket remote's URL and S3 endpoint.
				URL      string `json:"url,omitempty"`
				Endpoint string `json:"endpoint,omitempty"`
			}
			items := []item{}
			for _, n := range cfg.RemoteNames() {
				r := cfg.Remotes[n]
				it := item{Name: n, Current: n == cfg.CurrentRemote}
				if verbose {
					it.User, it.Address = r.User, r.Address
					if r.Bucket != nil {
						it.URL = r.Bucket.URL
						it.Endpoint = r.Bucket.Endpoint
					}
				}
				items = append(items, it)
			}
			if a.jsonOut {
				return writeJSON(a.out(), items)
			}
			t := &table{scripting: a.scripting}
			for _, it := range items {
				where := it.User + "@" + it.Address
				if it.URL != "" {
					where = it.URL
					if it.Endpoint != "" {
						where += " at " + it.Endpoint
					}
				}
				switch {
				case a.scripting && verbose:
					t.add(it.Name, where, yesNo(it.Current))
				case a.scripting:
					t.add(it.Name, yesNo(it.Current))
				default:
					mark := "  "
					if it.Current {
						mark = "* "
					}
					if verbose {
						t.add(mark+it.Name, where)
					} else {
						t.add(mark + it.Name)
					}
				}
			}
			return t.write(a.out())
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "show users and addresses")
	c.AddCommand(a.remoteAddCmd(), a.remoteRmCmd(), a.remoteSwitchCmd(), a.remoteKeyCmd(), a.remoteUnlockCmd())
	return c
}

// ParseRemoteAddress parses USER@HOST[:PORT] (an IPv6 host in brackets)
// into the user and a host:port address.
func ParseRemoteAddress(s string) (user, addr string, err error) {
	user, hostport, ok := strings.Cut(s, "@")
	if !ok {
		return "", "", fmt.Errorf("%w: remote address %q must be USER@HOST[:PORT]", dotmesh.ErrInvalidArgument, s)
	}
	if err := dotmesh.ValidateName("user", user); err != nil {
		return "", "", err
	}
	host, port := hostport, strconv.Itoa(api.DefaultPort)
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("%w: port %q in %q must be a number from 1 to 65535", dotmesh.ErrInvalidArgument, p, s)
		}
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	if host == "" || strings.ContainsAny(host, "/@?#[] \t") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return "", "", fmt.Errorf("%w: host %q in %q is not a host name or IP address", dotmesh.ErrInvalidArgument, host, s)
	}
	return user, net.JoinHostPort(host, port), nil
}

func (a *app) remoteAddCmd() *cobra.Command {
	var caFile string
	var useTLS, insecure bool
	var bf BucketRemote
	c := &cobra.Command{
		Use:   "add NAME USER@HOST[:PORT] | add NAME s3://BUCKET[/PREFIX] | add NAME file:///DIR",
		Short: "Add a remote: a node, checking its API key, or a bucket",
		Long: `Add a remote named NAME: the node at HOST (port 32607 unless given), used
as USER with an API key. The key is read from $DOTMESH_PASSWORD, or asked
for on the terminal without echo. dm pings the node with it first and
saves nothing when that fails. USER is admin, or a user of a hub (made
with ` + "`dm user add`" + `): dot names without a namespace then mean USER's own
(` + "`dm push hub app`" + ` lands in USER/app there).

For a node served over HTTPS (` + "`dm serve --tls-cert/--tls-key`" + `), --ca-cert FILE
pins the CA its certificate must chain to (the PEM is copied into the
config), or --tls trusts the system's CAs. A node beyond loopback reached
over plain HTTP would get the API key and data in clear: that needs
--insecure.

A remote given as s3://BUCKET[/PREFIX] is an S3 bucket (--endpoint for
another server than AWS, such as SeaweedFS or Ceph; --region), one given as
file:///DIR a local directory (a USB disk, a mounted share). S3 credentials
are found as the AWS tools find them: $AWS_ACCESS_KEY_ID and
$AWS_SECRET_ACCESS_KEY, else the profile (--profile, $AWS_PROFILE or
default) of ~/.aws/credentials and ~/.aws/config. In an empty bucket dm
makes an encrypted repository, its password asked twice (or taken from
--password-file FILE or $DOTMESH_REMOTE_PASSWORD); --no-encryption makes
one in plain instead. A bucket that holds a repository is opened with the
password, to check it. The config keeps the URL, endpoint, region, profile
and the password file's path; never credentials nor the password.`,
		Example: `  dm remote add prod admin@dm.example.com
  DOTMESH_PASSWORD=$(cat key) dm remote add backup admin@10.0.0.5:32607 --ca-cert ca.pem
  DOTMESH_PASSWORD=$MY_KEY dm remote add hub alice@hub.example.com --ca-cert hub-ca.pem
  dm remote add lab admin@10.0.0.7 --insecure
  dm remote add s3 s3://my-bucket/dotmesh --region eu-west-1
  dm remote add weed s3://backups --endpoint http://127.0.0.1:8333 --password-file ~/.dm-pw
  dm remote add usb file:///media/usb/dotmesh`,
		Args: usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := dotmesh.ValidateName("remote", name); err != nil {
				return err
			}
			if isBucketAddress(args[1]) {
				if useTLS || caFile != "" || insecure {
					return kinded(dotmesh.ErrInvalidArgument, errors.New("--tls, --ca-cert and --insecure are for node remotes; a bucket's endpoint URL says https:// or http://"))
				}
				bf.PasswordFile = a.passwordFile
				return a.addBucketRemote(cmd.Context(), name, args[1], bf)
			}
			if bf.Endpoint != "" || bf.Region != "" || bf.Profile != "" || a.passwordFile != "" || bf.NoEncryption {
				return kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("--endpoint, --region, --profile, --password-file and --no-encryption are for bucket remotes (s3://BUCKET, file:///DIR); %s is a node", args[1]))
			}
			user, addr, err := ParseRemoteAddress(args[1])
			if err != nil {
				return err
			}
			if !useTLS && caFile == "" && !insecure && !api.LoopbackAddr(addr) {
				return fmt.Errorf("%w: remote %s at %s is beyond this machine and would be reached over plain HTTP, sending the API key and data in clear; give --ca-cert FILE or --tls for a node serving HTTPS, or --insecure to accept plain HTTP", dotmesh.ErrInvalidArgument, name, addr)
			}
			if (useTLS || caFile != "") && !client.HasTLS {
				return a.tlsClient() // before the key is asked for
			}
			path, cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if _, ok := cfg.Remotes[name]; ok {
				return remoteExists(name)
			}
			key, err := a.readAPIKey(user, addr)
			if err != nil {
				return err
			}
			r := &Remote{User: user, Address: addr, APIKey: key, TLS: useTLS}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("reading the CA certificate: %w", err)
				}
				r.CACert = string(pem)
			}
			if err := pingRemote(cmd.Context(), name, r); err != nil {
				return err
			}
			cfg.Remotes[name] = r
			if cfg.CurrentRemote == "" {
				cfg.CurrentRemote = name
			}
			if err := SaveConfig(path, cfg); err != nil {
				return err
			}
			a.info("Added remote %s (%s@%s).", name, user, addr)
			return nil
		},
	}
	c.Flags().StringVar(&caFile, "ca-cert", "", "PEM `FILE` of the CA the node's TLS certificate must chain to (implies --tls)")
	c.Flags().BoolVar(&useTLS, "tls", false, "talk HTTPS to the node, trusting the system's CAs")
	c.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to a node beyond loopback (the API key and data cross the network in clear)")
	c.Flags().StringVar(&bf.Endpoint, "endpoint", "", "S3 server `URL` for a bucket not on AWS (http://127.0.0.1:8333)")
	c.Flags().StringVar(&bf.Region, "region", "", "S3 `REGION` of the bucket")
	c.Flags().StringVar(&bf.Profile, "profile", "", "AWS shared-files `PROFILE` with the bucket's credentials")
	c.Flags().BoolVar(&bf.NoEncryption, "no-encryption", false, "make a bucket repository without encryption (anyone reading the bucket reads the data)")
	a.passwordFileFlag(c)
	return c
}

func remoteExists(name string) error {
	return kinded(dotmesh.ErrAlreadyExists, fmt.Errorf("remote %s exists already; `dm remote rm %s` first", name, name))
}

// addBucketRemote opens the repository at url, or makes one in an empty
// store, and saves the remote.
func (a *app) addBucketRemote(ctx context.Context, name, url string, b BucketRemote) error {
	var err error
	if b.URL, err = ParseBucketURL(url); err != nil {
		return err
	}
	if b.PasswordFile, err = absPath(b.PasswordFile); err != nil {
		return err
	}
	path, cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	if _, ok := cfg.Remotes[name]; ok {
		return remoteExists(name)
	}
	what, err := a.openBucketRepo(ctx, name, &b)
	if err != nil {
		return err
	}
	cfg.Remotes[name] = &Remote{Bucket: &b}
	if err := SaveConfig(path, cfg); err != nil {
		return err
	}
	a.info("Added bucket remote %s (%s): %s.", name, b.URL, what)
	return nil
}

// readAPIKey gets the key from DOTMESH_PASSWORD or, on a terminal, a
// prompt without echo.
func (a *app) readAPIKey(user, addr string) (string, error) {
	// Keys never hold whitespace; a trailing newline from $(cat key) or a
	// key file must not make them wrong.
	if k := strings.TrimSpace(a.io.Getenv("DOTMESH_PASSWORD")); k != "" {
		return k, nil
	}
	fd, ok := terminalFd(a.io.Stdin)
	if !ok {
		return "", errors.New("no API key: set DOTMESH_PASSWORD, or run dm on a terminal to be asked for it")
	}
	fmt.Fprintf(a.io.Stderr, "API key for %s@%s: ", user, addr)
	b, err := a.readHidden(fd)
	fmt.Fprintln(a.io.Stderr)
	if err != nil {
		return "", fmt.Errorf("reading the API key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", errors.New("no API key given")
	}
	return key, nil
}

// pingRemote checks that the remote answers and accepts the key.
func pingRemote(ctx context.Context, name string, r *Remote) error {
	c, err := newClient(r, true)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		return wrapRemoteErr(err, name, r.Address)
	}
	return nil
}

func (a *app) remoteRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove"},
		Short:   "Forget a remote",
		Long: `Remove the remote NAME from the client config. Nothing changes on the
node or in the bucket itself.`,
		Example: `  dm remote rm prod`,
		Args:    usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := dotmesh.ValidateName("remote", name); err != nil {
				return err
			}
			path, cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if _, ok := cfg.Remotes[name]; !ok {
				return kinded(dotmesh.ErrNotFound, fmt.Errorf("no remote named %s; `dm remote` lists them", name))
			}
			delete(cfg.Remotes, name)
			if cfg.CurrentRemote == name {
				cfg.CurrentRemote = ""
			}
			if err := SaveConfig(path, cfg); err != nil {
				return err
			}
			a.info("Removed remote %s.", name)
			return nil
		},
	}
}

func (a *app) remoteSwitchCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "switch NAME",
		Short:   "Make NAME the current remote",
		Long:    `Make NAME the remote that commands use unless --remote says otherwise.`,
		Example: `  dm remote switch local`,
		Args:    usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := dotmesh.ValidateName("remote", name); err != nil {
				return err
			}
			path, cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if _, ok := cfg.Remotes[name]; !ok {
				return kinded(dotmesh.ErrNotFound, fmt.Errorf("no remote named %s; `dm remote` lists them", name))
			}
			if bucketOf(cfg, name) != nil {
				return notABucket(name)
			}
			cfg.CurrentRemote = name
			if err := SaveConfig(path, cfg); err != nil {
				return err
			}
			a.info("Switched to remote %s.", name)
			return nil
		},
	}
}

// readHidden reads a line from the terminal fd without echo. Interrupts
// are caught first (a command that does not catch them at once has no
// handler till then), so that a Ctrl-C at the prompt does not end dm
// with the echo still off.
func (a *app) readHidden(fd int) ([]byte, error) {
	if a.catchInterrupts != nil {
		a.catchInterrupts()
	}
	return term.ReadPassword(fd)
}
