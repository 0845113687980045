package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// storePasswordEnv holds the password of a node's encrypted files store.
const storePasswordEnv = "DOTMESH_STORE_PASSWORD"

// encryptHelp explains --encrypt in the long help of serve and cluster
// init; README's "Encryption at rest" says the same.
const encryptHelp = `Encryption at rest (files backend): --encrypt on a new data directory
seals the files backend's store in DIR/dump with the sealing of bucket
remotes (a random master key in DIR/dump/store.key, sealed under
Argon2id from the password; AES-256-GCM). Sealed: every stored chunk
and manifest (packs hold ciphertext, their records and indexes name no
content hash), commit records, synced states, transfer pins and database
source settings. Not sealed: the working state (DIR/dump/branches/*/*/tree,
the live directories applications use, and DIR/dots), the registry
(DIR/registry.db: dot, branch and tag names, commit messages, users,
keys) and its copies in DIR/dump/records, logs, and what the node sends
to peers (push and pull streams are not sealed by the store; use TLS).
The password comes from --password-file FILE, $` + storePasswordEnv + `, or a
prompt on a terminal (asked twice at --encrypt); every later start needs
it, a wrong one fails at once (exit status 6). A store made without
--encrypt stays plain, and --encrypt cannot convert it. zfs and btrfs
dots are not sealed by dotmesh.`

// storeCryptFlags are --encrypt and --password-file of serve and cluster
// init.
type storeCryptFlags struct {
	encrypt      bool
	passwordFile string
}

func (s *storeCryptFlags) add(f *pflag.FlagSet) {
	f.BoolVar(&s.encrypt, "encrypt", false, "encrypt the files store of a new data directory at rest (see Encryption at rest below)")
	f.StringVar(&s.passwordFile, "password-file", "", "read the files store's password from `FILE` (else $"+storePasswordEnv+", or a prompt); needed when the store is encrypted")
}

// check refuses --encrypt with another default backend given.
func (s *storeCryptFlags) check(backend string) error {
	if s.encrypt && backend != "" && backend != "files" && backend != "dump" {
		return fmt.Errorf("%w: --encrypt seals the files backend's store only; the %s backend is not sealed by dotmesh (ZFS native encryption is not available in zfs-fuse): use --backend files, or put the pool on an encrypted disk (dm-crypt/LUKS)", dotmesh.ErrNotSupported, backend)
	}
	return nil
}

// password returns the store password for the node in dataDir when its
// store is encrypted or --encrypt asks for one (nil otherwise): from
// --password-file, $DOTMESH_STORE_PASSWORD, or a prompt, asked twice
// for a new store.
func (a *app) storePassword(dataDir string, s *storeCryptFlags) ([]byte, error) {
	if err := notWired(a.nodes.StoreEncrypted != nil); err != nil {
		return nil, err
	}
	encrypted := a.nodes.StoreEncrypted(dataDir)
	if !encrypted && !s.encrypt {
		if s.passwordFile != "" {
			return nil, fmt.Errorf("%w: the files store in %s is not encrypted: --password-file is for an encrypted one (made with --encrypt)", dotmesh.ErrInvalidArgument, filepath.Join(dataDir, "dump"))
		}
		return nil, nil
	}
	if s.passwordFile != "" {
		return readPasswordFile(s.passwordFile)
	}
	if p := a.io.Getenv(storePasswordEnv); p != "" {
		return []byte(p), nil
	}
	what := "the encrypted files store in " + filepath.Join(dataDir, "dump")
	return a.askPassword("Password for "+what+": ", !encrypted, what, storePasswordEnv)
}

// apply sets the node's fields.
func (s *storeCryptFlags) apply(c *node.Config, password []byte) {
	c.Encrypt, c.StorePassword = s.encrypt, password
}

// storeCmd is `dm store`: the node's own files store.
func (a *app) storeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "store",
		Short: "Manage the node's encrypted files store",
		Long: `Manage the files store of a node made with --encrypt (see ` + "`dm serve --help`" + `,
Encryption at rest). A node that runs, started by ` + "`dm cluster init`" + ` with this
config, changes its keys itself when its admin asks (its "local" remote;
no password needed but the new one). A stopped node's store is opened
here, with a password it knows (--password-file, $` + storePasswordEnv + `, or a
prompt). Adding or removing a key changes no data; the running node
keeps the store open.`,
	}
	key := &cobra.Command{
		Use:   "key",
		Short: "List, add and remove the passwords of the encrypted files store",
	}
	key.AddCommand(a.storeKeyCmd("list"), a.storeKeyCmd("add"), a.storeKeyCmd("remove"))
	c.AddCommand(key)
	return c
}

func (a *app) storeKeyCmd(verb string) *cobra.Command {
	var (
		dir, newFile string
		force        bool
		sf           storeCryptFlags
	)
	c := &cobra.Command{Use: verb, Args: usageArgs(0, 0)}
	switch verb {
	case "list":
		c.Aliases = []string{"ls"}
		c.Short = "List the keys (passwords) of the encrypted files store"
		c.Long = "List the keys, one per password, of the node's encrypted files store: id,\ncreation time, key derivation, and * at the one that opened it now."
		c.Example = "  dm store key list --data-dir /var/lib/dotmesh --password-file pw"
	case "add":
		c.Short = "Add a password to the encrypted files store"
		c.Long = "Add a password that opens the node's encrypted files store, read from\n--new-password-file FILE or asked twice on the terminal without echo. The\nstore is opened with a password it knows already."
		c.Example = "  dm store key add --password-file old-pw --new-password-file new-pw"
		c.Flags().StringVar(&newFile, "new-password-file", "", "read the new password from `FILE`")
	case "remove":
		c.Use, c.Args = "remove ID", usageArgs(1, 1)
		c.Aliases = []string{"rm"}
		c.Short = "Remove a password of the encrypted files store"
		c.Long = "Remove key ID (see `dm store key list`): its password no longer opens the\nstore. The store's last key is never removed (without any key nothing in\nthe store can be read again); the one that opened it now only with --force."
		c.Example = "  dm store key remove 3f2a9c4d0e1b5a6f"
		c.Flags().BoolVar(&force, "force", false, "remove the key that opened the store now, too")
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		op := node.StoreKeyOp{Force: force}
		if verb == "remove" {
			op.Remove = args[0]
			if err := dotmesh.ValidateStoreKeyID(op.Remove); err != nil {
				return kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("key id %.70q is not a key id (16 hex digits, as `dm store key list` shows)", op.Remove))
			}
		}
		_, cfg, err := a.loadConfig()
		if err != nil {
			return err
		}
		d, err := a.localDataDir(dir, cfg)
		if err != nil {
			return err
		}
		if err := notWired(a.nodes.StoreKeys != nil, a.nodes.NodeRunning != nil, a.nodes.StoreEncrypted != nil); err != nil {
			return err
		}
		if !a.nodes.StoreEncrypted(d) {
			return kinded(dotmesh.ErrNotSupported, fmt.Errorf("the files store in %s is not encrypted and has no keys", filepath.Join(d, "dump")))
		}
		pid, running, err := a.nodes.NodeRunning(d)
		if err != nil {
			return err
		}
		// A running node changes its own keys, asked by its admin; a
		// stopped one's store is opened here with a password it knows.
		var local *Remote
		if running {
			if r, ok := cfg.Remotes[LocalRemote]; ok && r.DataDir == d && r.Bucket == nil {
				local = r
			} else {
				return kinded(dotmesh.ErrInUse, fmt.Errorf("the node in %s runs (pid %d) and the config names no remote for it; run this with the config of `dm cluster init` that started it, or `dm cluster stop` it first", d, pid))
			}
		}
		var password []byte
		if local == nil {
			if password, err = a.storePassword(d, &sf); err != nil {
				return err
			}
		}
		if verb == "add" {
			what := "the new key of the encrypted files store in " + filepath.Join(d, "dump") + " (--new-password-file)"
			if newFile != "" {
				op.NewPassword, err = readPasswordFile(newFile)
			} else {
				op.NewPassword, err = a.askPassword("New password for the encrypted files store: ", true, what, storePasswordEnv)
			}
			if err != nil {
				return err
			}
		}
		var (
			added string
			keys  []node.StoreKey
		)
		if local != nil {
			added, keys, err = a.runningStoreKeys(cmd.Context(), local, op)
		} else {
			added, keys, err = a.nodes.StoreKeys(d, password, op)
		}
		if err != nil {
			return err
		}
		switch verb {
		case "add":
			if a.jsonOut {
				return writeJSON(a.out(), map[string]string{"id": added})
			}
			if a.scripting {
				_, err = fmt.Fprintln(a.out(), added)
				return err
			}
			a.info("Added key %s to the encrypted files store in %s.", added, d)
			return nil
		case "remove":
			a.info("Removed key %s from the encrypted files store in %s.", op.Remove, d)
			return nil
		}
		if a.jsonOut {
			return writeJSON(a.out(), keys)
		}
		rows := make([]keyRow, len(keys))
		for i, k := range keys {
			rows[i] = keyRow{k.ID, k.Created, k.KDF, k.InUse}
		}
		return a.writeKeyTable(rows)
	}
	c.Flags().StringVar(&dir, "data-dir", "", "data directory `DIR` of the node (default: the one in the config)")
	c.Flags().StringVar(&sf.passwordFile, "password-file", "", "read a password the store knows from `FILE` (else $"+storePasswordEnv+", or a prompt)")
	return c
}

// runningStoreKeys does op through the API of the running node r (its
// admin's key), which keeps the store open with the key it has.
func (a *app) runningStoreKeys(ctx context.Context, r *Remote, op node.StoreKeyOp) (string, []node.StoreKey, error) {
	c, err := newClient(r, !a.noSocket, a.timeouts.options()...)
	if err != nil {
		return "", nil, fmt.Errorf("remote %s: %w", LocalRemote, err)
	}
	added, keys, err := op.Apply(ctx, c)
	if err != nil {
		return "", nil, wrapRemoteErr(err, LocalRemote, r.Address)
	}
	return added, keys, nil
}

// keyRow is a line of `dm store key list` and `dm remote key list`.
type keyRow struct {
	ID      string
	Created time.Time
	KDF     string
	InUse   bool
}

// writeKeyTable prints keys, * at the one in use.
func (a *app) writeKeyTable(rows []keyRow) error {
	t := &table{scripting: a.scripting, header: []string{"  ID", "CREATED", "KDF"}}
	for _, k := range rows {
		if a.scripting {
			t.add(k.ID, k.Created.UTC().Format(time.RFC3339), k.KDF, yesNo(k.InUse))
			continue
		}
		mark := "  "
		if k.InUse {
			mark = "* "
		}
		t.add(mark+k.ID, k.Created.Local().Format("2006-01-02 15:04"), k.KDF)
	}
	return t.write(a.out())
}
