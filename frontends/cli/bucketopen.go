//go:build !dmlight

package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// What opens a bucket remote's repository in this process (the bucket
// client: bucket/repo and transport/bucketremote, with their sealing and
// compression). The light dm is built without it (bucketopen_light.go)
// and hands these commands to dm-node: their package init alone cost
// every dm process a tenth of its start.

// bucketConfig is the bucketremote.Config of remote name, with its
// password unless the remote is not encrypted.
func (a *app) bucketConfig(name string, b *BucketRemote) (bucketremote.Config, error) {
	st, pw, err := a.bucketAccess(name, b)
	return bucketremote.Config{URL: b.URL, Store: st, Password: pw}, err
}

// dialBucket opens bucket remote name in this process.
func (a *app) dialBucket(ctx context.Context, name string, b *BucketRemote) (*bucketremote.Remote, error) {
	cfg, err := a.bucketConfig(name, b)
	if err != nil {
		return nil, err
	}
	r, err := bucketremote.Dial(ctx, cfg)
	var be *bucket.Error
	switch {
	case errors.Is(err, dotmesh.ErrNotFound) && !errors.As(err, &be):
		return nil, missingRepository(err, name, b)
	case err != nil:
		return nil, bucketError(err, name, b)
	}
	return r, nil
}

// withBucket runs fn with bucket remote name open, and closes it.
func (a *app) withBucket(ctx context.Context, name string, b *BucketRemote, fn func(*bucketremote.Remote) error) error {
	r, err := a.dialBucket(ctx, name, b)
	if err != nil {
		return err
	}
	err = fn(r)
	if cerr := r.Close(context.WithoutCancel(ctx)); err == nil && cerr != nil {
		err = cerr
	}
	return bucketError(err, name, b)
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

// addBucketKey is `dm remote key add NAME`: pw is the new password, nil
// to ask for it.
func (a *app) addBucketKey(ctx context.Context, name string, b *BucketRemote, pw []byte) error {
	return a.withBucket(ctx, name, b, func(r *bucketremote.Remote) (err error) {
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
}

// listBucketKeys is `dm remote key list NAME`.
func (a *app) listBucketKeys(ctx context.Context, name string) error {
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
}

// removeBucketKey is `dm remote key remove NAME ID`.
func (a *app) removeBucketKey(ctx context.Context, name, id string, force bool) error {
	return a.withBucketNamed(ctx, name, func(r *bucketremote.Remote) error {
		if err := r.Repo().RemoveKey(ctx, id, force); err != nil {
			return err
		}
		a.info("Removed key %s from bucket remote %s.", id, name)
		return nil
	})
}

// unlockBucket is `dm remote unlock NAME`.
func (a *app) unlockBucket(ctx context.Context, name string) error {
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
}

// openBucketRepo opens the repository of the new bucket remote name at
// b.URL, or makes one in an empty store (b.NoEncryption is set when the
// one there is not encrypted), and says what it found.
func (a *app) openBucketRepo(ctx context.Context, name string, b *BucketRemote) (string, error) {
	if u, _ := bucket.ParseURL(b.URL); u.Scheme == "file" {
		// A new directory on a disk is the common case; its parent must be.
		if err := os.Mkdir(u.Path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("bucket remote %s: %v", name, err))
		}
	}
	st, err := a.bucketStore(b)
	if err != nil {
		return "", err
	}
	rc := bucketremote.Config{URL: b.URL, Store: st}
	// Without a password an encrypted repository says so before any key
	// is tried, and an empty store that it holds none.
	r, err := bucketremote.Dial(ctx, rc)
	var be *bucket.Error
	what := "the repository there is not encrypted"
	switch {
	case err == nil:
		b.NoEncryption = true
	case errors.Is(err, dotmesh.ErrUnauthorized) && b.NoEncryption:
		return "", kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("%s holds an encrypted repository; add it without --no-encryption", b.URL))
	case errors.Is(err, dotmesh.ErrUnauthorized):
		if rc.Password, err = a.bucketPassword(name, b, false); err != nil {
			return "", err
		}
		if r, err = bucketremote.Dial(ctx, rc); err != nil {
			return "", bucketError(err, name, b)
		}
		what = "the repository there opens with the password"
	case errors.Is(err, dotmesh.ErrNotFound) && !errors.As(err, &be):
		o := repo.InitOptions{NoEncryption: b.NoEncryption}
		what = "made a repository without encryption"
		if !b.NoEncryption {
			if o.Password, err = a.bucketPassword(name, b, true); err != nil {
				return "", err
			}
			rc.Password = o.Password
			what = "made an encrypted repository; keep its password safe: without it nothing there can be read"
		}
		if r, err = bucketremote.Init(ctx, rc, o); err != nil {
			return "", bucketError(err, name, b)
		}
	default:
		return "", bucketError(err, name, b)
	}
	if err := r.Close(ctx); err != nil {
		return "", bucketError(err, name, b)
	}
	return what, nil
}

// isKeyInUse says whether err refuses to remove a key in use.
func isKeyInUse(err error) bool {
	var kiu *repo.KeyInUseError
	return errors.As(err, &kiu)
}
