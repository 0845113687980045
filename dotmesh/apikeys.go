package dotmesh

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// APIKeys is the node's store of API keys: the credentials frontends
// check. Keys live in the registry, so every node of a cluster accepts
// them; only a hash of each key is kept.
//
// Two kinds of record exist: the keys users are issued (Issue, List,
// Revoke), found by the hash of their secret so that a bearer token names
// its user; and one legacy key per user at apikeys/<user> (Get, Put,
// Create), which holds the admin key a node makes at first start.
// Authenticate accepts both.
type APIKeys struct{ n *Node }

// APIKeys returns the node's API key store.
func (n *Node) APIKeys() *APIKeys { return &APIKeys{n: n} }

// Get returns a user's legacy key hash, or ErrNotFound.
func (a *APIKeys) Get(ctx context.Context, user string) (*APIKey, error) {
	return a.n.apiKey(ctx, user)
}

// Put stores (or replaces) a user's legacy key hash.
func (a *APIKeys) Put(ctx context.Context, k APIKey) error { return a.n.putAPIKey(ctx, k) }

// Create stores a user's legacy key hash unless the user has one:
// ErrAlreadyExists then, so two nodes starting a cluster at once cannot
// both set the admin key.
func (a *APIKeys) Create(ctx context.Context, k APIKey) error { return a.n.createAPIKey(ctx, k) }

// APIKey is a stored legacy credential: only a hash of the key is kept.
type APIKey struct {
	User    string    `json:"user"`
	Hash    []byte    `json:"hash"`
	Created time.Time `json:"created"`
}

// HashKey is how API keys are stored. Keys are 256-bit random strings, so
// a plain SHA-256 is enough: there is nothing to brute-force.
func HashKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// NewKeySecret returns a fresh API key secret: 256 random bits in hex.
func NewKeySecret() string { return randomHex(32) }

// keyRecord is an issued API key, stored at keys/<hex of Hash>.
type keyRecord struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Label    string    `json:"label,omitempty"`
	ReadOnly bool      `json:"read_only,omitempty"`
	Hash     []byte    `json:"hash"`
	Created  time.Time `json:"created"`
}

func (k *keyRecord) info() KeyInfo {
	return KeyInfo{ID: k.ID, User: k.User, Label: k.Label, ReadOnly: k.ReadOnly, Created: k.Created}
}

// putAPIKey is APIKeys.Put.
func (n *Node) putAPIKey(ctx context.Context, k APIKey) error {
	if err := ValidateName("user", k.User); err != nil {
		return err
	}
	return n.reg.putAPIKey(ctx, k)
}

// createAPIKey is APIKeys.Create.
func (n *Node) createAPIKey(ctx context.Context, k APIKey) error {
	if err := ValidateName("user", k.User); err != nil {
		return err
	}
	err := n.reg.createAPIKey(ctx, k)
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w: user %s has an API key already", ErrAlreadyExists, k.User)
	}
	return err
}

// apiKey is APIKeys.Get.
func (n *Node) apiKey(ctx context.Context, user string) (*APIKey, error) {
	if err := ValidateName("user", user); err != nil {
		return nil, err
	}
	k, err := n.reg.apiKey(ctx, user)
	if err != nil {
		return nil, notFound(err, "no API key for user %s", user)
	}
	return k, nil
}

// newKeyRecord makes a key for user; the secret is returned once.
func (n *Node) newKeyRecord(user, label string, readOnly bool) (*keyRecord, string) {
	secret := NewKeySecret()
	return &keyRecord{ID: randomHex(8), User: user, Label: label, ReadOnly: readOnly,
		Hash: HashKey(secret), Created: n.now().UTC()}, secret
}

// issueKey is APIKeys.Issue.
func (n *Node) issueKey(ctx context.Context, user, label string, readOnly bool) (KeyInfo, string, error) {
	if err := validateLabel(label); err != nil {
		return KeyInfo{}, "", err
	}
	_, rev, err := n.reg.user(ctx, user)
	if err != nil {
		return KeyInfo{}, "", err
	}
	k, secret := n.newKeyRecord(user, label, readOnly)
	var conds []Condition
	if rev != 0 { // the user must still exist when the key is stored
		conds = append(conds, IfRevision(userKey(user), rev))
	}
	if _, err := n.store.Txn(ctx, conds, []Op{PutOp(keyKey(k.Hash), encode(k))}); err != nil {
		if errors.Is(err, ErrConflict) {
			return KeyInfo{}, "", fmt.Errorf("%w: user %s changed while issuing a key; try again", ErrConflict, user)
		}
		return KeyInfo{}, "", err
	}
	n.log.InfoContext(ctx, "issued an API key", "user", user, "key", k.ID, "read_only", readOnly)
	return k.info(), secret, nil
}

// listKeys is APIKeys.List.
func (n *Node) listKeys(ctx context.Context, user string) ([]KeyInfo, error) {
	if err := ValidateName("user", user); err != nil {
		return nil, err
	}
	recs, err := n.reg.keysOf(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, len(recs))
	for i, k := range recs {
		out[i] = k.info()
	}
	return out, nil
}

// revokeKey is APIKeys.Revoke.
func (n *Node) revokeKey(ctx context.Context, user, id string) error {
	if err := ValidateName("user", user); err != nil {
		return err
	}
	recs, err := n.reg.keysOf(ctx, user)
	if err != nil {
		return err
	}
	for _, k := range recs {
		if k.ID == id {
			if err := n.store.Delete(ctx, keyKey(k.Hash)); err != nil {
				return err
			}
			n.log.InfoContext(ctx, "revoked an API key", "user", user, "key", id)
			return nil
		}
	}
	return fmt.Errorf("%w: user %s has no API key %q", ErrNotFound, user, truncate(id))
}

// dummyHash is compared against when no key was found, so that a miss
// costs what a hit costs. Made on first use: every dm process links this
// package, and only a node authenticates.
var dummyHash = sync.OnceValue(func() []byte { return HashKey(NewKeySecret()) })

// authenticate is APIKeys.Authenticate. Every path does one hash and one
// constant-time comparison; only registry failures differ (and they are
// not ErrUnauthorized, so a frontend says the node is unwell rather than
// blaming the key).
func (n *Node) authenticate(ctx context.Context, user, secret string) (Principal, error) {
	hash := HashKey(secret)
	cached, stamp, ok := n.auth.get(user, hash)
	if ok && secret != "" {
		return cached, nil
	}
	want := dummyHash()
	var p Principal
	known := false
	k, err := n.reg.keyByHash(ctx, hash)
	switch {
	case err == nil && (user == "" || k.User == user):
		want, known = k.Hash, true
		p = Principal{User: k.User, KeyID: k.ID, ReadOnly: k.ReadOnly}
	case err == nil, isNotFound(err):
		// A legacy key: the admin's for a bearer token, else the named user's.
		legacy := user
		if legacy == "" {
			legacy = AdminUser
		}
		if ValidateName("user", legacy) != nil {
			break
		}
		lk, err := n.reg.apiKey(ctx, legacy)
		switch {
		case err == nil:
			want, known = lk.Hash, true
			p = Principal{User: legacy, KeyID: legacyKeyID}
		case !isNotFound(err):
			return Principal{}, fmt.Errorf("checking the API key: %w", err)
		}
	default:
		return Principal{}, fmt.Errorf("checking the API key: %w", err)
	}
	match := subtle.ConstantTimeCompare(hash, want) == 1
	if !match || !known || secret == "" {
		return Principal{}, fmt.Errorf("%w: wrong API key or unknown user", ErrUnauthorized)
	}
	admin, err := n.isAdmin(ctx, p.User)
	if err != nil {
		return Principal{}, fmt.Errorf("checking the API key: %w", err)
	}
	p.Admin = admin
	n.auth.put(user, hash, stamp, p)
	return p, nil
}

// legacyKeyID is the KeyID of a principal authenticated by a legacy key.
const legacyKeyID = "legacy"

// isAdmin reports whether user administers the node.
func (n *Node) isAdmin(ctx context.Context, user string) (bool, error) {
	if user == AdminUser {
		return true, nil
	}
	u, _, err := n.reg.user(ctx, user)
	switch {
	case err == nil:
		return u.Admin, nil
	case isNotFound(err):
		return false, nil // a legacy key without an account
	}
	return false, err
}

func sortKeys(recs []*keyRecord) {
	sort.Slice(recs, func(i, j int) bool {
		if !recs[i].Created.Equal(recs[j].Created) {
			return recs[i].Created.Before(recs[j].Created)
		}
		return recs[i].ID < recs[j].ID
	})
}

func hexHash(h []byte) string { return hex.EncodeToString(h) }
