package dotmesh

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// StoreKeyManager is an optional capability of a backend whose store is
// encrypted at rest: the passwords (key slots) that open it. Adding or
// removing one changes no data (each slot seals the same master key), so
// it is done while the node runs; the running store keeps its key.
type StoreKeyManager interface {
	// StoreKeys lists the key slots; ErrNotSupported when the store is
	// not encrypted.
	StoreKeys(ctx context.Context) ([]StoreKey, error)
	// AddStoreKey adds a slot opened by password and returns its id.
	AddStoreKey(ctx context.Context, password []byte) (string, error)
	// RemoveStoreKey removes slot id: never the last one (ErrInUse), the
	// one the store was opened with only with force (ErrInUse without),
	// ErrNotFound for an unknown id.
	RemoveStoreKey(ctx context.Context, id string, force bool) error
}

// StoreKey is a key slot of an encrypted store.
type StoreKey struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	KDF     string    `json:"kdf"`
	InUse   bool      `json:"in_use"` // the key that opened it now
}

// keyedStore returns the node's backend whose store is encrypted: the
// first, by name, that manages keys and lists some.
func (n *Node) keyedStore(ctx context.Context) (StoreKeyManager, []StoreKey, error) {
	for _, name := range n.BackendNames() {
		m, ok := n.backends[name].(StoreKeyManager)
		if !ok {
			continue
		}
		if keys, err := m.StoreKeys(ctx); err == nil {
			return m, keys, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: no store of this node is encrypted at rest, so it has no keys", ErrNotSupported)
}

// StoreKeys lists the keys of the node's store encrypted at rest.
func (n *Node) StoreKeys(ctx context.Context) ([]StoreKey, error) {
	_, keys, err := n.keyedStore(ctx)
	return keys, err
}

// AddStoreKey adds password as a key of the node's encrypted store and
// returns the new key's id.
func (n *Node) AddStoreKey(ctx context.Context, password []byte) (string, error) {
	m, _, err := n.keyedStore(ctx)
	if err != nil {
		return "", err
	}
	return m.AddStoreKey(ctx, password)
}

// RemoveStoreKey removes key id of the node's encrypted store (see
// StoreKeyManager.RemoveStoreKey).
func (n *Node) RemoveStoreKey(ctx context.Context, id string, force bool) error {
	m, _, err := n.keyedStore(ctx)
	if err != nil {
		return err
	}
	return m.RemoveStoreKey(ctx, id, force)
}

// ValidateStoreKeyID checks a store key's id: 16 hex digits, as
// StoreKeys lists them.
func ValidateStoreKeyID(id string) error {
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: key id %.70q is not a key id (16 hex digits, as the store's key list shows them)", ErrInvalidArgument, id)
	}
	return nil
}
