package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// FrontendRecords is a frontend's own small records (CSI's volumes and
// snapshots, Docker's create-time options), kept in the node's registry
// under frontend/<namespace>/ so that they live as long as the dots and
// are shared by a cluster's nodes. Frontends reach the store only through
// it. Values are opaque bytes; the frontend decodes and validates them.
type FrontendRecords struct {
	s      ClusterStore
	ns     string
	prefix string
}

// MaxFrontendRecordKey bounds a record key.
const MaxFrontendRecordKey = 1024

// FrontendRecords returns the records of one frontend namespace, a name
// ("csi", "docker") that is not a top-level key of the engine.
func (n *Node) FrontendRecords(namespace string) (*FrontendRecords, error) {
	if err := ValidateNewName("record namespace", namespace); err != nil {
		return nil, err
	}
	for _, p := range enginePrefixes {
		if namespace+"/" == p {
			return nil, fmt.Errorf("%w: record namespace %q is a key prefix of the engine; pick another", ErrInvalidName, namespace)
		}
	}
	return &FrontendRecords{s: n.store, ns: namespace, prefix: frontendNSPrefix(namespace)}, nil
}

func (r *FrontendRecords) checkKey(key string) error {
	if key == "" || len(key) > MaxFrontendRecordKey || !utf8.ValidString(key) || strings.ContainsRune(key, 0) {
		return fmt.Errorf("%w: %s record key %q must be 1 to %d bytes of UTF-8 without NUL", ErrInvalidArgument, r.ns, truncate(key), MaxFrontendRecordKey)
	}
	return nil
}

// Get returns the record under key, or ErrNotFound.
func (r *FrontendRecords) Get(ctx context.Context, key string) ([]byte, error) {
	if err := r.checkKey(key); err != nil {
		return nil, err
	}
	kv, err := r.s.Get(ctx, r.prefix+key)
	if err != nil {
		return nil, notFound(err, "no %s record %s", r.ns, key)
	}
	return kv.Value, nil
}

// Put writes the record under key, replacing any.
func (r *FrontendRecords) Put(ctx context.Context, key string, value []byte) error {
	if err := r.checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxRecordSize {
		return fmt.Errorf("%w: %s record %s is %d bytes; at most %d fit", ErrInvalidArgument, r.ns, truncate(key), len(value), MaxRecordSize)
	}
	_, err := r.s.Put(ctx, r.prefix+key, value)
	return err
}

// Delete removes the record under key; a missing one is no error.
func (r *FrontendRecords) Delete(ctx context.Context, key string) error {
	if err := r.checkKey(key); err != nil {
		return err
	}
	return r.s.Delete(ctx, r.prefix+key)
}

// List returns the records whose key starts with prefix ("" for all),
// sorted by key; each KV's Key is relative to the namespace.
func (r *FrontendRecords) List(ctx context.Context, prefix string) ([]KV, error) {
	kvs, err := r.s.List(ctx, r.prefix+prefix)
	if err != nil {
		return nil, err
	}
	for i := range kvs {
		kvs[i].Key = strings.TrimPrefix(kvs[i].Key, r.prefix)
	}
	return kvs, nil
}

// ImportLegacy moves the records a frontend wrote before namespaces, at
// <namespace>/<key> in the store, to their place in the namespace, each in
// one transaction; a record already in the namespace wins over its old
// copy. It returns how many it moved. Running it again finds nothing.
func (r *FrontendRecords) ImportLegacy(ctx context.Context) (int, error) {
	old := r.ns + "/"
	kvs, err := r.s.List(ctx, old)
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, kv := range kvs {
		key := r.prefix + strings.TrimPrefix(kv.Key, old)
		ops := []Op{DeleteOp(kv.Key)}
		conds := []Condition{IfRevision(kv.Key, kv.Revision)}
		_, err := r.s.Get(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			ops = append(ops, PutOp(key, kv.Value))
			conds = append(conds, IfAbsent(key))
		case err != nil:
			return moved, err
		}
		if _, err := r.s.Txn(ctx, conds, ops); err != nil {
			return moved, fmt.Errorf("moving %s record %s into its namespace: %w", r.ns, kv.Key, err)
		}
		if len(ops) == 2 {
			moved++
		}
	}
	return moved, nil
}
