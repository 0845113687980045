package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// AdminKeyFile is the name of the admin API key file in a data directory.
const AdminKeyFile = node.AdminKeyFile

// minKeyLen refuses keys short enough to guess; generated keys have 64.
const minKeyLen = 32

// EnsureAdminKey makes sure dataDir/admin-api-key exists and the registry
// accepts it, creating a fresh 256-bit key on first use. The file must be
// readable by its owner only: a key others could read is refused rather
// than silently re-protected, since it may have leaked already.
func EnsureAdminKey(ctx context.Context, node *dotmesh.Node, dataDir string) (key string, created bool, err error) {
	path := filepath.Join(dataDir, AdminKeyFile)
	key, err = readKeyFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		key = dotmesh.NewKeySecret()
		if err := writeFileAtomic(path, []byte(key+"\n")); err != nil {
			return "", false, fmt.Errorf("writing the admin API key: %w", err)
		}
		created = true
	case err != nil:
		return "", false, err
	}
	hash := HashKey(key)
	stored, err := node.APIKeys().Get(ctx, api.AdminUser)
	if err == nil && subtle.ConstantTimeCompare(stored.Hash, hash) == 1 {
		return key, created, nil
	}
	if err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
		return "", false, fmt.Errorf("reading the admin API key from the registry: %w", err)
	}
	if err := node.APIKeys().Put(ctx, dotmesh.APIKey{User: api.AdminUser, Hash: hash, Created: time.Now().UTC()}); err != nil {
		return "", false, fmt.Errorf("storing the admin API key in the registry: %w", err)
	}
	return key, created, nil
}

func readKeyFile(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file (%s); remove it and restart to make a new key", dotmesh.ErrInvalidArgument, path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %04o, so others may have read the key; `chmod 600 %s` if it is safe, or remove it and restart to make a new key", dotmesh.ErrInvalidArgument, path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the admin API key: %w", err)
	}
	key := string(bytes.TrimSpace(data))
	if len(key) < minKeyLen || strings.ContainsAny(key, " \t\r\n") {
		return "", fmt.Errorf("%w: %s does not hold a key (one line of at least %d characters); remove it and restart to make a new one", dotmesh.ErrInvalidArgument, path, minKeyLen)
	}
	return key, nil
}

// writeFileAtomic writes data with mode 0600 under a temporary name and
// renames it into place, so a crash never leaves a partial key file.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
