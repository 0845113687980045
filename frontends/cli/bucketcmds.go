package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// What a bucket remote holds, read and changed in this process: list,
// log, gc and verify when they name a bucket remote, and `dm remote key`
// and `dm remote unlock`. The commands are here; what opens the bucket
// is in bucketopen.go (a light dm hands them over: bucketopen_light.go).

// bucketArg returns the bucket remote a command acts on: the argument
// when it names one, else --remote when that names one; "" for neither.
func (a *app) bucketArg(args []string) (string, *BucketRemote, error) {
	path, cfg, err := a.loadConfig()
	if err != nil {
		return "", nil, err
	}
	// Unchanged, for the command's next loadConfig (connect's, mostly).
	a.peeked = &peekedConfig{path, cfg}
	if len(args) > 0 {
		if b := bucketOf(cfg, args[0]); b != nil {
			return args[0], b, nil
		}
	}
	if b := bucketOf(cfg, a.remoteFlag); b != nil {
		return a.remoteFlag, b, nil
	}
	return "", nil, nil
}

// mustBucket returns bucket remote name, or an error saying it is none.
func (a *app) mustBucket(name string) (*BucketRemote, error) {
	if err := dotmesh.ValidateName("remote", name); err != nil {
		return nil, err
	}
	_, cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	r, ok := cfg.Remotes[name]
	switch {
	case !ok:
		return nil, kinded(dotmesh.ErrNotFound, fmt.Errorf("no remote named %s; `dm remote` lists them", name))
	case r.Bucket == nil:
		return nil, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("remote %s is a node, not a bucket; this command is for bucket remotes (`dm remote add NAME s3://BUCKET`)", name))
	}
	return r.Bucket, nil
}

// ParsePercent parses --read-data's share: a number from 0 (exclusive)
// to 100, optionally followed by %.
func ParsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || !(v > 0 && v <= 100) {
		return 0, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("--read-data=%.20q must be a percentage above 0 and at most 100 (10, 2.5%%)", s))
	}
	return v, nil
}

func (a *app) remoteKeyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Add, list and remove the passwords of a bucket remote",
		Long: `An encrypted bucket repository has one master key, sealed once per
password; any of them opens it. ` + "`dm remote key add`" + ` adds a password (asked
twice on a terminal, or --new-password-file FILE), ` + "`list`" + ` shows the keys and
which one opens the repository now, ` + "`remove`" + ` removes one. The password
that opens the repository comes as for every bucket command:
--password-file, the remote's saved file, $DOTMESH_REMOTE_PASSWORD, or a
prompt.`,
		Example: `  dm remote key list backup
  dm remote key add backup --new-password-file ~/new-pw
  dm remote key remove backup 3f2a9c...`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.remoteKeyAddCmd(), a.remoteKeyListCmd(), a.remoteKeyRemoveCmd())
	return c
}

func (a *app) remoteKeyAddCmd() *cobra.Command {
	var newFile string
	c := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a password to bucket remote NAME",
		Long: `Add a password that opens the repository of bucket remote NAME. The new
password is read from --new-password-file FILE, or asked twice on the
terminal without echo. The repository is opened with a password it
knows already.`,
		Example: `  dm remote key add backup
  dm remote key add backup --password-file old-pw --new-password-file new-pw`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			b, err := a.mustBucket(name)
			if err != nil {
				return err
			}
			if b.NoEncryption {
				return kinded(dotmesh.ErrNotSupported, fmt.Errorf("bucket remote %s is not encrypted and has no passwords", name))
			}
			var pw []byte
			if newFile != "" {
				if pw, err = readPasswordFile(newFile); err != nil {
					return err
				}
			}
			return a.addBucketKey(cmd.Context(), name, b, pw)
		},
	}
	c.Flags().StringVar(&newFile, "new-password-file", "", "read the new password from `FILE`")
	a.passwordFileFlag(c)
	return c
}

func (a *app) remoteKeyListCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "list NAME",
		Aliases: []string{"ls"},
		Short:   "List the keys of bucket remote NAME",
		Long: `List the keys (one per password) of the repository of bucket remote NAME:
id, creation time, key derivation, and * at the one that opened it now.`,
		Example: `  dm remote key list backup`,
		Args:    usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.listBucketKeys(cmd.Context(), args[0])
		},
	}
	a.passwordFileFlag(c)
	return c
}

func (a *app) remoteKeyRemoveCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "remove NAME ID",
		Aliases: []string{"rm"},
		Short:   "Remove a key of bucket remote NAME",
		Long: `Remove the key ID (see ` + "`dm remote key list`" + `) from the repository of bucket
remote NAME: its password no longer opens it. The key that opened the
repository now, and the repository's last key, are kept unless --force:
without any key nothing in the bucket can be read again.`,
		Example: `  dm remote key remove backup 3f2a9c4d0e1b5a6f7c8d9e0a1b2c3d4e`,
		Args:    usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, id := args[0], args[1]
			if len(id) == 0 || len(id) > 64 || strings.Trim(id, "0123456789abcdef") != "" {
				return kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("key id %.70q is not a key id (hex, as `dm remote key list %s` shows)", id, name))
			}
			return a.removeBucketKey(cmd.Context(), name, id, force)
		},
	}
	c.Flags().BoolVar(&force, "force", false, "remove the key in use, or the last key, too")
	a.passwordFileFlag(c)
	return c
}

func (a *app) remoteUnlockCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "unlock NAME",
		Short: "Remove stale locks from bucket remote NAME",
		Long: `Remove the locks of bucket remote NAME that their holders stopped
refreshing (a push or gc killed, a machine gone), as restic unlock does.
Locks of running pushes and gcs are refreshed and stay.`,
		Example: `  dm remote unlock backup`,
		Args:    usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.unlockBucket(cmd.Context(), args[0])
		},
	}
	a.passwordFileFlag(c)
	return c
}

// errNoBucketFlag refuses a flag that only bucket remotes take.
func errNoBucketFlag(flag string) error {
	return kinded(dotmesh.ErrInvalidArgument, errors.New(flag+" is for bucket remotes: name one (`dm remote -v` lists them)"))
}
