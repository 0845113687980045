package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Bucket remotes: a remote whose address is a store URL (s3://, file://)
// is a repository in object storage. What it holds is read and changed in
// this process (list, log, gc, verify, keys, unlock: bucketopen.go; a
// light dm hands those to dm-node); push, pull and clone run on the node
// dm talks to, which gets the bucket's settings, credentials and password
// for that one call. Credentials and passwords are found each time, never
// stored.

// passwordEnv holds a bucket repository's password for scripts.
const passwordEnv = "DOTMESH_REMOTE_PASSWORD"

// isBucketAddress tells a store URL from USER@HOST: by its scheme.
func isBucketAddress(s string) bool {
	return strings.HasPrefix(s, "s3://") || strings.HasPrefix(s, "file://")
}

// ParseBucketURL checks a bucket remote's URL (s3://BUCKET[/PREFIX] or
// file:///DIR) and returns it in its canonical form.
func ParseBucketURL(s string) (string, error) {
	u, err := bucket.ParseURL(s)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return "", fmt.Errorf("%w: bucket URL %q names no bucket: give s3://BUCKET[/PREFIX]", dotmesh.ErrInvalidArgument, s)
		}
	case "file":
	default:
		return "", fmt.Errorf("%w: bucket URL %q: give s3://BUCKET[/PREFIX] or file:///DIR", dotmesh.ErrInvalidArgument, s)
	}
	return u.String(), nil
}

// bucketOf returns the bucket remote NAME of the config, or nil when NAME
// is no remote or a node remote.
func bucketOf(cfg *Config, name string) *BucketRemote {
	if r, ok := cfg.Remotes[name]; ok && r != nil {
		return r.Bucket
	}
	return nil
}

// notABucket refuses a node command aimed at a bucket remote.
func notABucket(name string) error {
	return kinded(dotmesh.ErrNotSupported, fmt.Errorf("remote %s is a bucket, not a node: buckets serve push, pull, clone, list, log, gc, verify and `dm remote key|unlock`; choose a node with --remote NAME", name))
}

// passwordFileFlag adds --password-file to a command that opens a bucket.
func (a *app) passwordFileFlag(c *cobra.Command) {
	c.Flags().StringVar(&a.passwordFile, "password-file", "", "read the bucket repository's password from `FILE` (else the remote's saved file, $"+passwordEnv+", or a prompt)")
}

// readPasswordFile reads a password file; a final line break is not part
// of the password (echo pw > file), other bytes are (a key file).
func readPasswordFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("reading the password file: %v", err))
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("password file %s is empty", path))
	}
	return b, nil
}

// bucketPassword finds the password of bucket remote name: --password-file,
// the remote's saved password file, $DOTMESH_REMOTE_PASSWORD, then a
// prompt on a terminal (twice when confirm, for a new repository).
func (a *app) bucketPassword(name string, b *BucketRemote, confirm bool) ([]byte, error) {
	switch {
	case a.passwordFile != "":
		return readPasswordFile(a.passwordFile)
	case b.PasswordFile != "":
		return readPasswordFile(b.PasswordFile)
	}
	if p := a.io.Getenv(passwordEnv); p != "" {
		return []byte(p), nil
	}
	what := fmt.Sprintf("bucket remote %s (%s)", name, b.URL)
	return a.promptPassword("Password for "+what+": ", confirm, what)
}

// promptPassword asks for a password on the terminal without echo, twice
// when confirm.
func (a *app) promptPassword(prompt string, confirm bool, what string) ([]byte, error) {
	return a.askPassword(prompt, confirm, what, passwordEnv)
}

// askPassword is promptPassword; env is the variable that could have
// given the password, for the error without a terminal.
func (a *app) askPassword(prompt string, confirm bool, what, env string) ([]byte, error) {
	fd, ok := terminalFd(a.io.Stdin)
	if !ok {
		return nil, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("no password for %s: give --password-file FILE, set %s, or run dm on a terminal to be asked", what, env))
	}
	ask := func(p string) ([]byte, error) {
		fmt.Fprint(a.io.Stderr, p)
		b, err := a.readHidden(fd)
		fmt.Fprintln(a.io.Stderr)
		if err != nil {
			return nil, fmt.Errorf("reading the password: %w", err)
		}
		return b, nil
	}
	pw, err := ask(prompt)
	if err != nil {
		return nil, err
	}
	if len(pw) == 0 {
		return nil, kinded(dotmesh.ErrInvalidArgument, errors.New("no password given"))
	}
	if confirm {
		again, err := ask("Repeat it: ")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pw, again) {
			return nil, kinded(dotmesh.ErrInvalidArgument, errors.New("the passwords differ; nothing was changed"))
		}
	}
	return pw, nil
}

// bucketStore is what opening b's store needs: for s3, credentials found
// as the AWS tools find them (environment, shared files, the remote's
// profile), the remote's endpoint and region overriding. Every command
// that reaches an s3 bucket asks here first, before it prints or changes
// anything, so that a dm without the S3 client hands it over here.
func (a *app) bucketStore(b *BucketRemote) (bucket.Config, error) {
	if !strings.HasPrefix(b.URL, "s3://") {
		return bucket.Config{}, nil
	}
	if a.nodes.S3Credentials == nil {
		return bucket.Config{}, a.handOver("the S3 client")
	}
	cfg, err := a.nodes.S3Credentials(b.Profile)
	if err != nil {
		return cfg, err
	}
	if b.Endpoint != "" {
		cfg.Endpoint = b.Endpoint
	}
	if b.Region != "" {
		cfg.Region = b.Region
	}
	return cfg, nil
}

// transferBucket is what the node needs to reach bucket remote name for
// one transfer.
func (a *app) transferBucket(name string, b *BucketRemote) (*api.TransferBucket, error) {
	st, pw, err := a.bucketAccess(name, b)
	if err != nil {
		return nil, err
	}
	return &api.TransferBucket{URL: b.URL, Endpoint: st.Endpoint, Region: st.Region,
		AccessKey: st.AccessKey, SecretKey: st.SecretKey, SessionToken: st.SessionToken,
		Password: string(pw)}, nil
}

// bucketAccess is what reaching remote name's repository needs: its
// store's settings and, unless the remote is not encrypted, its password.
func (a *app) bucketAccess(name string, b *BucketRemote) (bucket.Config, []byte, error) {
	st, err := a.bucketStore(b)
	if err != nil || b.NoEncryption {
		return st, nil, err
	}
	pw, err := a.bucketPassword(name, b, false)
	return st, pw, err
}

// absPath makes a saved file path absolute, so that the config works from
// any directory.
func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err)
	}
	return abs, nil
}
