package repo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/seal"
)

// KDF names.
const (
	KDFArgon2id = seal.KDFArgon2id
	KDFScrypt   = seal.KDFScrypt
)

// KDFParams says how a key object derives its key from a password. The
// zero value means DefaultKDF.
type KDFParams = seal.KDFParams

// DefaultKDF is package seal's: Argon2id with 19 MiB, 2 passes and 1
// lane, OWASP's first recommended minimum.
var DefaultKDF = seal.DefaultKDF

// keyFile is a keys/ object: a key slot (package seal) bound to the
// repository id and the key's name.
type keyFile = seal.Slot

// KeyInfo describes a key of a repository.
type KeyInfo struct {
	ID      string
	Created time.Time
	KDF     KDFParams
	InUse   bool // the key this Repo was opened with
}

const keysDir = "keys/"

func keyName(id string) string { return keysDir + id }

func keyAD(repoID, name string) []byte {
	return []byte("dotmesh-repo key\x00" + repoID + "\x00" + name)
}

// parseKeyFile decodes and checks a key object.
func parseKeyFile(b []byte) (keyFile, error) { return seal.ParseSlot(b, FormatVersion) }

// newKeyFile seals master under password with params.
func newKeyFile(master, password []byte, params KDFParams, repoID, name string, now time.Time) ([]byte, error) {
	k, err := seal.NewSlot(master, password, params, keyAD(repoID, name), FormatVersion, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err)
	}
	return json.Marshal(k)
}

// unsealKey returns the master key if password opens k.
func unsealKey(k keyFile, password []byte, repoID, name string) ([]byte, bool) {
	return k.Unseal(password, keyAD(repoID, name))
}

func newKeyID() string {
	var b [16]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

// keyIDs lists the ids of the repository's keys.
func keyIDs(ctx context.Context, st bucket.Store) ([]string, error) {
	var ids []string
	err := st.List(ctx, keysDir, func(oi bucket.ObjectInfo) error {
		ids = append(ids, strings.TrimPrefix(oi.Name, keysDir))
		return nil
	})
	return ids, err
}

func readSmall(ctx context.Context, st bucket.Store, name string, limit int64) ([]byte, error) {
	rc, err := st.Get(ctx, name, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readAllLimit(rc, limit, name)
}

// AddKey adds a key that opens the repository with password, derived
// with params (zero: DefaultKDF), and returns its id.
func (r *Repo) AddKey(ctx context.Context, password []byte, params KDFParams) (string, error) {
	if r.master == nil {
		return "", fmt.Errorf("%w: repository %s is not encrypted and has no keys", dotmesh.ErrNotSupported, r.store.Location())
	}
	if len(password) == 0 {
		return "", fmt.Errorf("%w: the new password is empty", dotmesh.ErrInvalidArgument)
	}
	id := newKeyID()
	b, err := newKeyFile(r.master, password, params.OrDefault(), r.cfg.ID, keyName(id), r.now())
	if err != nil {
		return "", err
	}
	if err := r.store.Put(ctx, keyName(id), bytesReader(b), int64(len(b))); err != nil {
		return "", err
	}
	return id, nil
}

// Keys lists the repository's keys.
func (r *Repo) Keys(ctx context.Context) ([]KeyInfo, error) {
	ids, err := keyIDs(ctx, r.store)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, id := range ids {
		b, err := readSmall(ctx, r.store, keyName(id), maxKeySize)
		if errors.Is(err, dotmesh.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		k, err := parseKeyFile(b)
		if err != nil {
			return nil, corrupt(keyName(id), err)
		}
		out = append(out, KeyInfo{ID: id, Created: k.Created, KDF: k.KDF, InUse: id == r.keyID})
	}
	return out, nil
}

// KeyInUseError: RemoveKey refused to remove the key the repository was
// opened with, or its last key. It wraps dotmesh.ErrInUse.
type KeyInUseError struct {
	ID   string
	Last bool // the repository's only key
}

func (e *KeyInUseError) Error() string {
	if e.Last {
		return fmt.Sprintf("%v: key %s is the repository's only key; without it nothing in the repository can be read again", dotmesh.ErrInUse, e.ID)
	}
	return fmt.Sprintf("%v: key %s is the one this repository was opened with", dotmesh.ErrInUse, e.ID)
}

func (e *KeyInUseError) Unwrap() error { return dotmesh.ErrInUse }

// RemoveKey removes key id. It refuses (KeyInUseError) the repository's
// last key and the key it was opened with unless force.
func (r *Repo) RemoveKey(ctx context.Context, id string, force bool) error {
	ids, err := keyIDs(ctx, r.store)
	if err != nil {
		return err
	}
	if !slices.Contains(ids, id) {
		return fmt.Errorf("%w: repository %s has no key %q", dotmesh.ErrNotFound, r.store.Location(), id)
	}
	if !force && len(ids) == 1 {
		return &KeyInUseError{ID: id, Last: true}
	}
	if !force && id == r.keyID {
		return &KeyInUseError{ID: id}
	}
	return r.store.Delete(ctx, keyName(id))
}

// KeyID is the id of the key the repository was opened with ("" without
// encryption).
func (r *Repo) KeyID() string { return r.keyID }
