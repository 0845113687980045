package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// What a bucket remote holds, read and changed in this process: list,
// log, gc and verify when they name a bucket remote, and `dm remote key`
// and `dm remote unlock`.

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

// withBucketNamed runs fn on bucket remote name (mustBucket, then
// withBucket).
func (a *app) withBucketNamed(ctx context.Context, name string, fn func(*bucketremote.Remote) error) error {
	b, err := a.mustBucket(name)
	if err != nil {
		return err
	}
	return a.withBucket(ctx, name, b, fn)
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

// listBucket is `dm list NAME` for a bucket remote.
func (a *app) listBucket(ctx context.Context, name string, b *BucketRemote) error {
	return a.withBucket(ctx, name, b, func(r *bucketremote.Remote) error {
		dots, err := r.List(ctx)
		if err != nil {
			return err
		}
		if a.jsonOut {
			// Names as dm prints them everywhere ([namespace/]dot).
			type item struct {
				Name string `json:"name"`
				bucketremote.DotInfo
			}
			items := make([]item, len(dots))
			for i, d := range dots {
				items[i] = item{d.Name.String(), d}
			}
			return writeJSON(a.out(), items)
		}
		t := &table{scripting: a.scripting, header: []string{"DOT", "BRANCH", "HEAD", "COMMITS", "SIZE", "UPDATED"}}
		for _, d := range dots {
			for _, br := range d.Branches {
				head, when := shortID(string(br.Head)), br.Time.Local().Format("2006-01-02 15:04")
				if a.scripting {
					head, when = string(br.Head), br.Time.UTC().Format(time.RFC3339)
				}
				t.add(d.Name.String(), br.Name, head, strconv.Itoa(br.Commits), a.size(br.Bytes), when)
			}
		}
		if err := t.write(a.out()); err != nil {
			return err
		}
		if len(dots) == 0 && !a.scripting {
			a.info("Bucket remote %s holds no dots yet; `dm push %s DOT` sends one.", name, name)
		}
		return nil
	})
}

// logBucket is `dm log --remote NAME DOT [REF]` for a bucket remote.
func (a *app) logBucket(ctx context.Context, name string, b *BucketRemote, dot dotmesh.DotName, ref string, limit int) error {
	return a.withBucket(ctx, name, b, func(r *bucketremote.Remote) error {
		commits, err := r.Log(ctx, dot, ref)
		if err != nil {
			return err
		}
		if limit > 0 && len(commits) > limit {
			commits = commits[:limit]
		}
		return a.writeCommits(commits, nil)
	})
}

// gcBucket is `dm gc NAME` for a bucket remote.
func (a *app) gcBucket(ctx context.Context, name string, b *BucketRemote, keep int, dryRun bool) error {
	return a.withBucket(ctx, name, b, func(r *bucketremote.Remote) error {
		res, err := withProgress(a, ctx, "gc", func(ctx context.Context) (bucketremote.GCResult, error) {
			return r.GC(ctx, bucketremote.GCOptions{Keep: keep, DryRun: dryRun})
		})
		if err != nil {
			return err
		}
		switch {
		case a.jsonOut:
			return writeJSON(a.out(), struct {
				bucketremote.GCResult
				DryRun bool `json:"dry_run"`
			}{res, dryRun})
		case a.scripting:
			_, err = fmt.Fprintf(a.out(), "%d\t%d\t%d\t%d\n", res.Commits, res.Blobs, res.Bytes, res.Unfinished)
			return err
		}
		verb, freed := "removed", "freed"
		if dryRun {
			verb, freed = "would remove", "would free"
		}
		msg := fmt.Sprintf("%s %d commits and %d chunks from bucket remote %s; %s %s", verb, res.Commits, res.Blobs, name, freed, HumanSize(res.Bytes))
		if res.Unfinished > 0 {
			msg += fmt.Sprintf(" (%d commits of pushes that never finished among them)", res.Unfinished)
		}
		_, err = fmt.Fprintln(a.out(), msg)
		return err
	})
}

// verifyBucket is `dm verify NAME` for a bucket remote.
func (a *app) verifyBucket(ctx context.Context, name string, b *BucketRemote, readData string) error {
	opts := bucketremote.VerifyOptions{}
	if readData != "" {
		pct, err := ParsePercent(readData)
		if err != nil {
			return err
		}
		opts.ReadData = true
		if pct < 100 {
			opts.SamplePercent = pct
		}
	}
	return a.withBucket(ctx, name, b, func(r *bucketremote.Remote) error {
		res, err := withProgress(a, ctx, "verify", func(ctx context.Context) (bucketremote.VerifyResult, error) {
			return r.Verify(ctx, opts)
		})
		if err != nil {
			return err
		}
		if a.jsonOut {
			if err := writeJSON(a.out(), res); err != nil {
				return err
			}
		} else {
			for _, p := range res.Problems {
				where := ""
				if p.Dot != "" {
					where = " of dot " + p.Dot
				}
				if p.Commit != "" {
					where += " commit " + shortID(p.Commit)
				}
				fmt.Fprintf(a.out(), "damaged object %s%s: %s\n", printable(p.Object), printable(where), printable(p.Message))
			}
			a.info("bucket remote %s: %d commits, %d chunks, %d read and checked; %d problems", name, res.Commits, res.Blobs, res.BlobsRead, len(res.Problems))
		}
		if len(res.Problems) > 0 {
			return errDamage
		}
		return nil
	})
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
			ctx := cmd.Context()
			return a.withBucket(ctx, name, b, func(r *bucketremote.Remote) error {
				if pw == nil {
					if pw, err = a.promptPassword("New password for bucket remote "+name+": ", true, "the new key of bucket remote "+name+" (--new-password-file)"); err != nil {
						return err
					}
				}
				id, err := r.Repo().AddKey(ctx, pw, repo.KDFParams{})
				if err != nil {
					return err
				}
				if a.jsonOut {
					return writeJSON(a.out(), map[string]string{"id": id})
				}
				if a.scripting {
					_, err = fmt.Fprintln(a.out(), id)
					return err
				}
				a.info("Added key %s to bucket remote %s.", id, name)
				return nil
			})
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
			name := args[0]
			ctx := cmd.Context()
			return a.withBucketNamed(ctx, name, func(r *bucketremote.Remote) error {
				keys, err := r.Repo().Keys(ctx)
				if err != nil {
					return err
				}
				if keys == nil {
					keys = []repo.KeyInfo{}
				}
				if a.jsonOut {
					return writeJSON(a.out(), keys)
				}
				rows := make([]keyRow, len(keys))
				for i, k := range keys {
					rows[i] = keyRow{k.ID, k.Created, k.KDF.Name, k.InUse}
				}
				return a.writeKeyTable(rows)
			})
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
			ctx := cmd.Context()
			return a.withBucketNamed(ctx, name, func(r *bucketremote.Remote) error {
				if err := r.Repo().RemoveKey(ctx, id, force); err != nil {
					return err
				}
				a.info("Removed key %s from bucket remote %s.", id, name)
				return nil
			})
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
			name := args[0]
			ctx := cmd.Context()
			return a.withBucketNamed(ctx, name, func(r *bucketremote.Remote) error {
				n, err := r.Repo().RemoveStaleLocks(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut {
					return writeJSON(a.out(), map[string]int{"removed": n})
				}
				a.info("Removed %d stale %s from bucket remote %s.", n, plural(n, "lock", "locks"), name)
				return nil
			})
		},
	}
	a.passwordFileFlag(c)
	return c
}

// errNoBucketFlag refuses a flag that only bucket remotes take.
func errNoBucketFlag(flag string) error {
	return kinded(dotmesh.ErrInvalidArgument, errors.New(flag+" is for bucket remotes: name one (`dm remote -v` lists them)"))
}
