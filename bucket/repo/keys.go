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
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// KDF names.
const (
	KDFArgon2id = "argon2id"
	KDFScrypt   = "scrypt"
)

// KDFParams says how a key object derives its key from a password. The
// zero value means DefaultKDF.
type KDFParams struct {
	Name string `json:"name"` // KDFArgon2id or KDFScrypt
	// Argon2id: passes, memory in KiB, lanes.
	Time    uint32 `json:"time,omitempty"`
	Memory  uint32 `json:"memory,omitempty"`
	Threads uint8  `json:"threads,omitempty"`
	// scrypt: N (a power of two), r, p.
	N int `json:"n,omitempty"`
	R int `json:"r,omitempty"`
	P int `json:"p,omitempty"`
}

// DefaultKDF is Argon2id with 64 MiB, 3 passes and 4 lanes (about a
// tenth of a second here), the RFC 9106 second recommendation.
var DefaultKDF = KDFParams{Name: KDFArgon2id, Time: 3, Memory: 64 << 10, Threads: 4}

// Bounds of the parameters a key object may ask for: a key object comes
// from the bucket, and must not make Open spend unbounded memory or time.
const (
	maxArgonMemory = 1 << 20 // KiB: 1 GiB
	maxArgonTime   = 64
	maxScryptLogN  = 24
	saltLen        = 32
)

func (p KDFParams) orDefault() KDFParams {
	if p == (KDFParams{}) {
		return DefaultKDF
	}
	return p
}

func (p KDFParams) validate() error {
	switch p.Name {
	case KDFArgon2id:
		if p.Time < 1 || p.Time > maxArgonTime || p.Memory < 8*uint32(max(p.Threads, 1)) || p.Memory > maxArgonMemory || p.Threads < 1 || p.N != 0 || p.R != 0 || p.P != 0 {
			return fmt.Errorf("argon2id parameters time %d, memory %d KiB, threads %d are out of range (time 1..%d, memory 8×threads..%d KiB, threads >= 1)", p.Time, p.Memory, p.Threads, maxArgonTime, maxArgonMemory)
		}
	case KDFScrypt:
		if p.N < 2 || p.N&(p.N-1) != 0 || p.N > 1<<maxScryptLogN || p.R < 1 || p.P < 1 || p.R*p.P >= 1<<20 || p.Time != 0 || p.Memory != 0 || p.Threads != 0 {
			return fmt.Errorf("scrypt parameters N %d, r %d, p %d are out of range (N a power of two up to 2^%d, r, p >= 1, r×p < 2^20)", p.N, p.R, p.P, maxScryptLogN)
		}
		if int64(128)*int64(p.R)*int64(p.N) > 1<<30 {
			return fmt.Errorf("scrypt parameters N %d, r %d need more than 1 GiB", p.N, p.R)
		}
	default:
		return fmt.Errorf("unknown KDF %q (known: %s, %s)", p.Name, KDFArgon2id, KDFScrypt)
	}
	return nil
}

func (p KDFParams) derive(password, salt []byte) ([]byte, error) {
	switch p.Name {
	case KDFArgon2id:
		return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, 32), nil
	case KDFScrypt:
		return scrypt.Key(password, salt, p.N, p.R, p.P, 32)
	}
	return nil, p.validate()
}

// keyFile is a keys/ object.
type keyFile struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	KDF     KDFParams `json:"kdf"`
	Salt    []byte    `json:"salt"`
	// Sealed is the master key sealed with XChaCha20-Poly1305 under the
	// derived key: nonce | ciphertext | tag, bound to the repository id
	// and the key's name.
	Sealed []byte `json:"sealed"`
}

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
func parseKeyFile(b []byte) (keyFile, error) {
	var k keyFile
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("key is not JSON: %v", err)
	}
	if k.Version != FormatVersion {
		return k, fmt.Errorf("key has format version %d; this dotmesh knows version %d", k.Version, FormatVersion)
	}
	if err := k.KDF.validate(); err != nil {
		return k, fmt.Errorf("key: %v", err)
	}
	if len(k.Salt) != saltLen {
		return k, fmt.Errorf("key salt is %d bytes, not %d", len(k.Salt), saltLen)
	}
	if len(k.Sealed) != chacha20poly1305.NonceSizeX+32+chacha20poly1305.Overhead {
		return k, fmt.Errorf("key's sealed master key is %d bytes, not %d", len(k.Sealed), chacha20poly1305.NonceSizeX+32+chacha20poly1305.Overhead)
	}
	return k, nil
}

// newKeyFile seals master under password with params.
func newKeyFile(master, password []byte, params KDFParams, repoID, name string, now time.Time) ([]byte, error) {
	if err := params.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err)
	}
	k := keyFile{Version: FormatVersion, Created: now.UTC(), KDF: params, Salt: make([]byte, saltLen)}
	rand.Read(k.Salt)
	dk, err := params.derive(password, k.Salt)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(master)+aead.Overhead())
	rand.Read(nonce)
	k.Sealed = aead.Seal(nonce, nonce, master, keyAD(repoID, name))
	return json.Marshal(k)
}

// unseal returns the master key if password opens k.
func (k keyFile) unseal(password []byte, repoID, name string) ([]byte, bool) {
	dk, err := k.KDF.derive(password, k.Salt)
	if err != nil {
		return nil, false
	}
	aead, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return nil, false
	}
	ns := aead.NonceSize()
	master, err := aead.Open(nil, k.Sealed[:ns], k.Sealed[ns:], keyAD(repoID, name))
	return master, err == nil
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
	b, err := newKeyFile(r.master, password, params.orDefault(), r.cfg.ID, keyName(id), r.now())
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
