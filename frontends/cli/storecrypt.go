package cli

import (
	"fmt"
	"path/filepath"

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
