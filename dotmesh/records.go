package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// RecordKeeper is an optional capability: the backend keeps, beside its
// data, a copy of the registry records of the dots, branches and commits it
// stores, so that a lost or damaged registry can be rebuilt from the
// backends (RebuildRegistry). The registry stays the source of truth while
// it is healthy; the copies are only read by a rebuild.
//
// Records are opaque bytes (the JSON the Node writes to the registry, at
// most MaxRecordSize): a backend stores and returns them verbatim, so
// fields added later survive a rebuild. Keys are per dot and match
// ValidateRecordKey. Copies are written after the registry transaction,
// and the zfs and btrfs backends write them behind the caller, so a crash
// can leave copies a few updates behind (on zfs-fuse, whose copies wait
// for a quiet pool, up to 30 s of updates while the pool never rests); a
// rebuild only restores what the backend still holds data for.
type RecordKeeper interface {
	// KeepRecords stores each record of recs for dot, replacing an older
	// one; a nil value removes the record (removing a missing one, or any
	// record of a dot without storage, is not an error).
	KeepRecords(ctx context.Context, dot DotID, recs map[string][]byte) error
	// Records returns every kept record, by dot and key.
	Records(ctx context.Context) (map[DotID]map[string][]byte, error)
}

// MaxRecordSize bounds one kept record.
const MaxRecordSize = 1 << 20

// Record keys: "dot", "branch.<name>", "commit.<id>", "tag.<name>".
const (
	recordDot          = "dot"
	recordBranchPrefix = "branch."
	recordCommitPrefix = "commit."
	recordTagPrefix    = "tag."
)

var recordKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`) }) // compiled on first use, not at every dm start

// ValidateRecordKey checks a RecordKeeper key: it is safe as a file name
// and a property name part.
func ValidateRecordKey(k string) error {
	if !recordKeyRE().MatchString(k) || k == "." || k == ".." {
		return fmt.Errorf("%w: record key %q", ErrInvalidName, truncate(k))
	}
	return nil
}

// ErrRegistryLost: the registry lacks dots that the backends hold data of
// (it is empty, or was replaced); starting would delete that data.
var ErrRegistryLost = fmt.Errorf("%w: the registry lacks dots the backends hold", ErrCorrupt)

// recordFor maps a registry key to the dot and record key a RecordKeeper
// keeps it under; ok is false for keys that are not kept.
func recordFor(key string) (dot DotID, rec string, ok bool) {
	switch {
	case strings.HasPrefix(key, dotsPrefix):
		return DotID(key[len(dotsPrefix):]), recordDot, true
	case strings.HasPrefix(key, branchesPrefix):
		id, b, found := strings.Cut(key[len(branchesPrefix):], "/")
		return DotID(id), recordBranchPrefix + b, found
	case strings.HasPrefix(key, commitsPrefix):
		id, c, found := strings.Cut(key[len(commitsPrefix):], "/")
		return DotID(id), recordCommitPrefix + c, found
	case strings.HasPrefix(key, tagsPrefix):
		id, t, found := strings.Cut(key[len(tagsPrefix):], "/")
		return DotID(id), recordTagPrefix + t, found
	}
	return "", "", false
}

// keepingStore is the Node's view of its ClusterStore: writes of dot,
// branch and commit records are copied to the RecordKeeper of the dot's
// backend after they committed. Copies of one dot are made in revision
// order (the dot's lock is held across the transaction and the copy).
//
// Cluster nodes keep no copies (off): the registry is etcd, the dot's data
// may live on another node, and a rebuild covers a node alone.
type keepingStore struct {
	ClusterStore
	n   *Node
	off bool

	mu       sync.Mutex
	dotLocks map[DotID]*sync.Mutex
	backend  map[DotID]string // a dot's backend never changes

	// gate: every access below waits for the registry transactions of
	// commits answered before them (journal.go).
	gate journalGate
}

func newKeepingStore(s ClusterStore, n *Node) *keepingStore {
	return &keepingStore{ClusterStore: s, n: n, dotLocks: make(map[DotID]*sync.Mutex), backend: make(map[DotID]string)}
}

func (k *keepingStore) Get(ctx context.Context, key string) (KV, error) {
	if err := k.gate.wait(ctx); err != nil {
		return KV{}, err
	}
	return k.ClusterStore.Get(ctx, key)
}

func (k *keepingStore) List(ctx context.Context, prefix string) ([]KV, error) {
	if err := k.gate.wait(ctx); err != nil {
		return nil, err
	}
	return k.ClusterStore.List(ctx, prefix)
}

// Scan forwards to the store's Scanner (see scanPrefix).
func (k *keepingStore) Scan(ctx context.Context, prefix string, fn func(key, value []byte) error) error {
	if err := k.gate.wait(ctx); err != nil {
		return err
	}
	return scanPrefix(ctx, k.ClusterStore, prefix, fn)
}

// ListKeys forwards to the store's KeyLister (see keysUnder).
func (k *keepingStore) ListKeys(ctx context.Context, prefix string) ([]string, error) {
	if err := k.gate.wait(ctx); err != nil {
		return nil, err
	}
	return keysUnder(ctx, k.ClusterStore, prefix)
}

// ListCached forwards to the store's CachedLister (see listCached).
func (k *keepingStore) ListCached(ctx context.Context, prefix string) ([]KV, error) {
	if err := k.gate.wait(ctx); err != nil {
		return nil, err
	}
	return listCached(ctx, k.ClusterStore, prefix)
}

func (k *keepingStore) Put(ctx context.Context, key string, value []byte) (int64, error) {
	if err := k.gate.wait(ctx); err != nil {
		return 0, err
	}
	defer k.n.lists.touch(key) // after the write: see listCache
	if _, _, ok := recordFor(key); !ok || k.off {
		return k.ClusterStore.Put(ctx, key, value)
	}
	return k.txn(ctx, nil, []Op{PutOp(key, value)})
}

func (k *keepingStore) Delete(ctx context.Context, key string) error {
	if err := k.gate.wait(ctx); err != nil {
		return err
	}
	defer k.n.lists.touch(key)
	if _, _, ok := recordFor(key); !ok || k.off {
		return k.ClusterStore.Delete(ctx, key)
	}
	_, err := k.txn(ctx, nil, []Op{DeleteOp(key)})
	return err
}

func (k *keepingStore) Txn(ctx context.Context, conds []Condition, ops []Op) (int64, error) {
	if err := k.gate.wait(ctx); err != nil {
		return 0, err
	}
	return k.txn(ctx, conds, ops)
}

// txn is Txn without the wait at the gate: the transaction of a commit
// answered before it, which the gate waits for.
func (k *keepingStore) txn(ctx context.Context, conds []Condition, ops []Op) (int64, error) {
	defer k.n.lists.touchOps(ops)
	recs := make(map[DotID]map[string][]byte)
	for _, op := range ops {
		dot, rec, ok := recordFor(op.Key)
		if !ok {
			continue
		}
		if recs[dot] == nil {
			recs[dot] = make(map[string][]byte)
		}
		var v []byte
		if !op.Delete {
			v = op.Value
			if v == nil {
				v = []byte{}
			}
		}
		recs[dot][rec] = v
	}
	if len(recs) == 0 || k.off {
		return k.ClusterStore.Txn(ctx, conds, ops)
	}
	dots := make([]DotID, 0, len(recs))
	for d := range recs {
		dots = append(dots, d)
	}
	sort.Slice(dots, func(i, j int) bool { return dots[i] < dots[j] })
	keepers := make(map[DotID]RecordKeeper, len(dots))
	for _, d := range dots {
		l := k.dotLock(d)
		l.Lock()
		defer l.Unlock()
		// Resolved before the transaction: a dot's delete removes the record
		// that names its backend.
		if rk := k.keeper(ctx, d, recs[d][recordDot]); rk != nil {
			keepers[d] = rk
		}
	}
	rev, err := k.ClusterStore.Txn(ctx, conds, ops)
	if err != nil {
		return rev, err
	}
	for _, d := range dots {
		if rk := keepers[d]; rk != nil {
			if err := rk.KeepRecords(ctx, d, recs[d]); err != nil {
				k.n.log.WarnContext(ctx, "keeping a copy of the registry records with the data; a registry rebuild would miss them", "dot", d, "err", err)
			}
		}
	}
	return rev, nil
}

func (k *keepingStore) dotLock(d DotID) *sync.Mutex {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.dotLocks[d]
	if l == nil {
		l = new(sync.Mutex)
		k.dotLocks[d] = l
	}
	return l
}

// keeper finds the RecordKeeper of dot d's backend: from the dot record
// being written, the registry, or a staged transfer; nil when the backend
// keeps no records.
func (k *keepingStore) keeper(ctx context.Context, d DotID, dotRec []byte) RecordKeeper {
	k.mu.Lock()
	name, ok := k.backend[d]
	k.mu.Unlock()
	if !ok {
		var dot *Dot
		if len(dotRec) > 0 {
			dot, _ = decode[Dot](KV{Key: dotKey(d), Value: dotRec})
		}
		if dot == nil {
			if kv, err := k.ClusterStore.Get(ctx, dotKey(d)); err == nil {
				dot, _ = decode[Dot](kv)
			}
		}
		if dot == nil {
			staged, _ := k.n.stagedDots(ctx)
			for _, s := range staged {
				if s.ID == d {
					dot = s
				}
			}
		}
		if dot == nil {
			return nil
		}
		name = dot.Backend
		k.mu.Lock()
		k.backend[d] = name
		k.mu.Unlock()
	}
	rk, _ := k.n.backends[name].(RecordKeeper)
	return rk
}

// checkRegistryHeld refuses a registry without dots next to backends that
// hold branches: reconcile would delete all of them as unknown.
func (n *Node) checkRegistryHeld(ctx context.Context, dots []*Dot) error {
	if len(dots) > 0 {
		return nil
	}
	for _, name := range n.BackendNames() {
		refs, err := n.backends[name].Branches(ctx)
		if err != nil {
			return fmt.Errorf("listing branches of backend %s: %w", name, err)
		}
		if len(refs) > 0 {
			return fmt.Errorf("%w: backend %s holds %d branches", ErrRegistryLost, name, len(refs))
		}
	}
	return nil
}

// RebuildStats reports what RebuildRegistry restored and left out.
type RebuildStats struct {
	Dots, Branches, Commits int
	// Skipped counts records left out: their data is gone, or (dots) no
	// branch of them has storage any more.
	Skipped int
}

// RebuildRegistry fills an empty registry with the records the backends
// keep (RecordKeeper) for the data they hold: dots, branches with their
// heads, commits with all their metadata and the tags of those commits,
// byte for byte as they were written. Run it with no Node open on the store or the backends. It
// refuses a registry that holds dots already, and a backend that holds
// branches but keeps no records. Users, API keys, sharing and the audit
// live only in the registry: a rebuild cannot bring them back.
func RebuildRegistry(ctx context.Context, store ClusterStore, backends []StorageBackend) (RebuildStats, error) {
	var st RebuildStats
	if kvs, err := store.List(ctx, dotsPrefix); err != nil {
		return st, err
	} else if len(kvs) > 0 {
		return st, fmt.Errorf("%w: the registry holds %d dots already; rebuild only into an empty registry", ErrAlreadyExists, len(kvs))
	}
	var all []*rebuiltDot
	names := make(map[DotName]DotID)
	for _, be := range backends {
		refs, err := be.Branches(ctx)
		if err != nil {
			return st, fmt.Errorf("listing branches of backend %s: %w", be.Name(), err)
		}
		rk, ok := be.(RecordKeeper)
		if !ok {
			if len(refs) > 0 {
				return st, fmt.Errorf("%w: backend %s holds %d branches but keeps no registry records", ErrNotSupported, be.Name(), len(refs))
			}
			continue
		}
		stored := make(map[BranchRef]bool, len(refs))
		for _, r := range refs {
			stored[r] = true
		}
		commitData := make(map[BranchRef]map[CommitID]bool)
		hasData := func(c *Commit) (bool, error) {
			ref := BranchRef{Dot: c.Dot, Branch: c.Branch}
			m, ok := commitData[ref]
			if !ok {
				ids, err := be.Commits(ctx, ref)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return false, fmt.Errorf("listing commits of %s: %w", ref, err)
				}
				m = make(map[CommitID]bool, len(ids))
				for _, id := range ids {
					m[id] = true
				}
				commitData[ref] = m
			}
			return m[c.ID], nil
		}
		recs, err := rk.Records(ctx)
		if err != nil {
			return st, fmt.Errorf("reading the records backend %s keeps: %w", be.Name(), err)
		}
		ids := make([]DotID, 0, len(recs))
		for id := range recs {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			r, err := rebuildDot(id, recs[id], be.Name(), stored, hasData, &st)
			if err != nil {
				return st, err
			}
			if r == nil {
				continue
			}
			if other, dup := names[r.DotName()]; dup {
				return st, fmt.Errorf("%w: dots %s and %s are both named %s", ErrConflict, other, id, r.DotName())
			}
			names[r.DotName()] = id
			all = append(all, r)
		}
	}
	for _, r := range all {
		if _, err := store.Txn(ctx, []Condition{IfAbsent(nameKey(r.DotName())), IfAbsent(dotKey(r.ID))}, r.ops); err != nil {
			return st, fmt.Errorf("writing dot %s to the registry: %w", r.DotName(), err)
		}
	}
	return st, nil
}

// rebuiltDot is a dot and the registry writes that restore it.
type rebuiltDot struct {
	*Dot
	ops []Op
}

// rebuildDot turns one dot's kept records into registry writes, keeping
// only branches with storage and commits with data; nil when nothing of
// the dot is left.
func rebuildDot(id DotID, recs map[string][]byte, backend string, stored map[BranchRef]bool, hasData func(*Commit) (bool, error), st *RebuildStats) (*rebuiltDot, error) {
	raw, ok := recs[recordDot]
	if !ok {
		st.Skipped += len(recs)
		return nil, nil
	}
	d, err := decode[Dot](KV{Key: dotKey(id), Value: raw})
	if err != nil {
		return nil, err
	}
	if d.ID != id || d.Backend != backend {
		return nil, fmt.Errorf("%w: the record of dot %s kept by backend %s names dot %s of backend %s", ErrCorrupt, id, backend, d.ID, d.Backend)
	}
	if err := d.DotName().Validate(); err != nil {
		return nil, fmt.Errorf("%w: the record of dot %s: %w", ErrCorrupt, id, err)
	}
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var branches, commits, tags []Op
	kept := make(map[CommitID]bool)
	for _, k := range keys {
		kv := KV{Value: recs[k]}
		switch {
		case strings.HasPrefix(k, recordBranchPrefix):
			kv.Key = branchKey(id, k[len(recordBranchPrefix):])
			b, err := decode[Branch](kv)
			if err != nil {
				return nil, err
			}
			if b.Dot != id || recordBranchPrefix+b.Name != k || !stored[b.Ref()] {
				st.Skipped++
				continue
			}
			branches = append(branches, PutOp(kv.Key, kv.Value))
		case strings.HasPrefix(k, recordCommitPrefix):
			kv.Key = commitKey(id, CommitID(k[len(recordCommitPrefix):]))
			c, err := decode[Commit](kv)
			if err != nil {
				return nil, err
			}
			ok, err := hasData(c)
			if err != nil {
				return nil, err
			}
			if c.Dot != id || recordCommitPrefix+string(c.ID) != k || !ok {
				st.Skipped++
				continue
			}
			commits = append(commits, PutOp(kv.Key, kv.Value))
			kept[c.ID] = true
		case strings.HasPrefix(k, recordTagPrefix): // after "commit.": keys are sorted
			kv.Key = tagKey(id, k[len(recordTagPrefix):])
			t, err := decode[Tag](kv)
			if err != nil {
				return nil, err
			}
			if recordTagPrefix+t.Name != k || !kept[t.Commit] {
				st.Skipped++
				continue
			}
			tags = append(tags, PutOp(kv.Key, kv.Value))
		}
	}
	if len(branches) == 0 {
		st.Skipped += 1 + len(commits) + len(tags)
		return nil, nil
	}
	st.Dots++
	st.Branches += len(branches)
	st.Commits += len(commits)
	ops := append([]Op{PutOp(nameKey(d.DotName()), []byte(d.ID)), PutOp(dotKey(id), raw)}, branches...)
	ops = append(ops, commits...)
	return &rebuiltDot{Dot: d, ops: append(ops, tags...)}, nil
}

// CountDots counts the dots in a registry.
func CountDots(ctx context.Context, store ClusterStore) (int, error) {
	kvs, err := store.List(ctx, dotsPrefix)
	return len(kvs), err
}
