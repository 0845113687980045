package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// EnsureClusterAdminKey is EnsureAdminKey for a node of a cluster, whose
// nodes all share one admin key (they call each other with it). The
// registry's key wins: a node never replaces it.
//
//   - given (the cluster's key, `dm cluster join --cluster-key-file`) is
//     checked against the registry and then written to the data directory;
//   - else the data directory's key is used if the registry accepts it;
//   - else, when the registry has no admin key yet (the first node), a new
//     key is made and stored in both;
//   - else the node refuses to start: it would lock the others out.
func EnsureClusterAdminKey(ctx context.Context, node *dotmesh.Node, dataDir, given string) (key string, created bool, err error) {
	path := filepath.Join(dataDir, AdminKeyFile)
	stored, err := node.APIKeys().Get(ctx, api.AdminUser)
	switch {
	case errors.Is(err, dotmesh.ErrNotFound):
		stored = nil
	case err != nil:
		return "", false, fmt.Errorf("reading the cluster's admin API key from the registry: %w", err)
	}
	matches := func(k string) bool {
		return stored != nil && subtle.ConstantTimeCompare(stored.Hash, HashKey(k)) == 1
	}
	file, ferr := readKeyFile(path)
	if ferr != nil && !errors.Is(ferr, fs.ErrNotExist) {
		return "", false, ferr
	}
	switch {
	case given != "":
		if len(given) < minKeyLen {
			return "", false, fmt.Errorf("%w: the cluster key is shorter than %d characters; pass the admin-api-key file of a node of the cluster", dotmesh.ErrInvalidArgument, minKeyLen)
		}
		if stored != nil && !matches(given) {
			return "", false, fmt.Errorf("%w: the cluster key given does not match the cluster's admin API key; pass the admin-api-key file of a node of this cluster", dotmesh.ErrUnauthorized)
		}
		key = given
	case ferr == nil:
		if stored != nil && !matches(file) {
			return "", false, fmt.Errorf("%w: %s does not match the cluster's admin API key (another node made it); pass the cluster's key: `dm cluster join --cluster-key-file FILE` with the admin-api-key file of a node of the cluster", dotmesh.ErrUnauthorized, path)
		}
		key = file
	case stored != nil:
		return "", false, fmt.Errorf("%w: the cluster has an admin API key and this node has none; pass the cluster's key: `dm cluster join --cluster-key-file FILE` with the admin-api-key file of a node of the cluster", dotmesh.ErrUnauthorized)
	default:
		key, created = dotmesh.NewKeySecret(), true
	}
	if stored == nil {
		err := node.APIKeys().Create(ctx, dotmesh.APIKey{User: api.AdminUser, Hash: HashKey(key), Created: time.Now().UTC()})
		if errors.Is(err, dotmesh.ErrAlreadyExists) {
			return "", false, fmt.Errorf("%w: another node set the cluster's admin API key at the same moment; start this one with `dm cluster join --cluster-key-file FILE` and that node's admin-api-key file", dotmesh.ErrConflict)
		}
		if err != nil {
			return "", false, fmt.Errorf("storing the admin API key in the registry: %w", err)
		}
	}
	if ferr != nil || file != key {
		if err := writeFileAtomic(path, []byte(key+"\n")); err != nil {
			return "", false, fmt.Errorf("writing the admin API key: %w", err)
		}
	}
	return key, created, nil
}
