package dotmesh

import (
	"context"
	"encoding/json"
	"fmt"
)

// The registry's key layout is in keys.go.

// registry wraps a ClusterStore with typed, JSON-encoded access.
type registry struct {
	s  ClusterStore
	cc *commitCache // nil: commits are decoded on every read
	lc *listCache   // nil: a long walk lists the records every time
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding %T: %v", v, err)) // only our own types are encoded
	}
	return b
}

func decode[T any](kv KV) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return nil, fmt.Errorf("%w: registry key %s: %v", ErrCorrupt, kv.Key, err)
	}
	return v, nil
}

func (r registry) dotID(ctx context.Context, n DotName) (DotID, error) {
	kv, err := r.s.Get(ctx, nameKey(n))
	if err != nil {
		if isNotFound(err) {
			return "", &NotFoundError{Kind: KindDot, Dot: n}
		}
		return "", err
	}
	return DotID(kv.Value), nil
}

func (r registry) dot(ctx context.Context, id DotID) (*Dot, int64, error) {
	kv, err := r.s.Get(ctx, dotKey(id))
	if err != nil {
		return nil, 0, notFound(err, "dot %s does not exist", id)
	}
	d, err := decode[Dot](kv)
	return d, kv.Revision, err
}

func (r registry) dotByName(ctx context.Context, n DotName) (*Dot, int64, error) {
	id, err := r.dotID(ctx, n)
	if err != nil {
		return nil, 0, err
	}
	return r.dot(ctx, id)
}

func (r registry) branch(ctx context.Context, d *Dot, name string) (*Branch, int64, error) {
	b, rev, err := readBranch(ctx, r.s, d.ID, name)
	if isNotFound(err) {
		return nil, 0, &NotFoundError{Kind: KindBranch, Name: name, Dot: d.DotName()}
	}
	return b, rev, err
}

func (r registry) branches(ctx context.Context, id DotID) ([]*Branch, error) {
	kvs, err := r.s.List(ctx, branchPrefix(id))
	if err != nil {
		return nil, err
	}
	out := make([]*Branch, 0, len(kvs))
	for _, kv := range kvs {
		b, err := decode[Branch](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (r registry) commits(ctx context.Context, id DotID) (map[CommitID]*Commit, error) {
	kvs, err := r.s.List(ctx, commitPrefix(id))
	if err != nil {
		return nil, err
	}
	out := make(map[CommitID]*Commit, len(kvs))
	for _, kv := range kvs {
		c, err := r.cc.decode(kv)
		if err != nil {
			return nil, err
		}
		out[c.ID] = c
	}
	return out, nil
}

func (r registry) dots(ctx context.Context) ([]*Dot, error) {
	kvs, err := r.s.List(ctx, dotsPrefix)
	if err != nil {
		return nil, err
	}
	return decodeDots(kvs)
}

func decodeDots(kvs []KV) ([]*Dot, error) {
	out := make([]*Dot, 0, len(kvs))
	for _, kv := range kvs {
		d, err := decode[Dot](kv)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// notFound rewrites a store's ErrNotFound into a message for users and
// passes other errors (an unreachable store) through unchanged.
func notFound(err error, format string, args ...any) error {
	if isNotFound(err) {
		return fmt.Errorf("%w: "+format, append([]any{ErrNotFound}, args...)...)
	}
	return err
}

// putDot writes d if its record is still at revision rev (else ErrConflict).
func (r registry) putDot(ctx context.Context, d *Dot, rev int64) (int64, error) {
	return r.s.Txn(ctx, []Condition{IfRevision(dotKey(d.ID), rev)}, []Op{PutOp(dotKey(d.ID), encode(d))})
}

// putBranch writes b of dot id if its record is still at revision rev
// (else ErrConflict).
func (r registry) putBranch(ctx context.Context, id DotID, b *Branch, rev int64) (int64, error) {
	return r.putBranchWith(ctx, id, b, rev, nil, nil)
}

// putBranchWith is putBranch with more conditions and ops in the same
// transaction.
func (r registry) putBranchWith(ctx context.Context, id DotID, b *Branch, rev int64, conds []Condition, ops []Op) (int64, error) {
	return r.s.Txn(ctx, append([]Condition{IfRevision(branchKey(id, b.Name), rev)}, conds...), append([]Op{PutOp(branchKey(id, b.Name), encode(b))}, ops...))
}

func (r registry) apiKey(ctx context.Context, user string) (*APIKey, error) {
	kv, err := r.s.Get(ctx, apiKeyKey(user))
	if err != nil {
		return nil, err
	}
	return decode[APIKey](kv)
}

func (r registry) putAPIKey(ctx context.Context, k APIKey) error {
	_, err := r.s.Put(ctx, apiKeyKey(k.User), encode(k))
	return err
}

// createAPIKey stores k unless the user has a key (ErrConflict).
func (r registry) createAPIKey(ctx context.Context, k APIKey) error {
	_, err := r.s.Txn(ctx, []Condition{IfAbsent(apiKeyKey(k.User))}, []Op{PutOp(apiKeyKey(k.User), encode(k))})
	return err
}

// putReplica records that node holds commit c of dot d (cluster mode).
func (r registry) putReplica(ctx context.Context, d DotID, c CommitID, node string) error {
	_, err := r.s.Put(ctx, replicaKey(d, c, node), nil)
	return err
}

func (r registry) deleteReplica(ctx context.Context, d DotID, c CommitID, node string) error {
	return r.s.Delete(ctx, replicaKey(d, c, node))
}

// listRecords decodes every record under prefix, in key order.
func listRecords[T any](ctx context.Context, s ClusterStore, prefix string) ([]*T, []KV, error) {
	kvs, err := s.List(ctx, prefix)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*T, 0, len(kvs))
	for _, kv := range kvs {
		v, err := decode[T](kv)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, v)
	}
	return out, kvs, nil
}

// user returns a user and its record's revision; AdminUser without a
// record is synthesised at revision 0. ErrNotFound names the user.
func (r registry) user(ctx context.Context, name string) (*User, int64, error) {
	if err := ValidateName("user", name); err != nil {
		return nil, 0, err
	}
	kv, err := r.s.Get(ctx, userKey(name))
	if err != nil {
		if isNotFound(err) && name == AdminUser {
			return &User{Name: AdminUser, Admin: true}, 0, nil
		}
		return nil, 0, notFound(err, "there is no user %s", name)
	}
	u, err := decode[User](kv)
	return u, kv.Revision, err
}

// keyByHash returns the issued key whose secret hashes to hash.
func (r registry) keyByHash(ctx context.Context, hash []byte) (*keyRecord, error) {
	kv, err := r.s.Get(ctx, keyKey(hash))
	if err != nil {
		return nil, err
	}
	return decode[keyRecord](kv)
}

// keysOf returns user's issued keys, oldest first.
func (r registry) keysOf(ctx context.Context, user string) ([]*keyRecord, error) {
	all, _, err := listRecords[keyRecord](ctx, r.s, keysPrefix)
	if err != nil {
		return nil, err
	}
	var out []*keyRecord
	for _, k := range all {
		if k.User == user {
			out = append(out, k)
		}
	}
	sortKeys(out)
	return out, nil
}

// grants returns the grants on dot id, by user.
func (r registry) grants(ctx context.Context, id DotID) ([]*Grant, error) {
	gs, _, err := listRecords[Grant](ctx, r.s, grantPrefix(id))
	return gs, err
}

// visibility returns dot id's visibility.
func (r registry) visibility(ctx context.Context, id DotID) (Visibility, error) {
	kv, err := r.s.Get(ctx, visibilityKey(id))
	if isNotFound(err) {
		return VisibilityPrivate, nil
	}
	if err != nil {
		return "", err
	}
	v, err := decode[visibilityRecord](kv)
	if err != nil {
		return "", err
	}
	return v.Visibility, nil
}
