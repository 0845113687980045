package storetest_test

// Proof that the suite can fail: each mutant below breaks one part of the
// contract on top of the (conforming) bbolt store, and the subtest named
// with it must then fail. The suite runs in a child process so that its
// failures do not fail this test.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/cluster/storetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const mutantEnv = "STORETEST_MUTANT"

type mutant struct {
	name  string
	test  string // the suite subtest that must fail, "Group/Name"
	build func(dotmesh.ClusterStore) dotmesh.ClusterStore
}

// base forwards everything; mutants override one method.
type base struct{ dotmesh.ClusterStore }

type (
	getWrongErr  struct{ base }
	putStaleRev  struct{ base }
	delMissing   struct{ base }
	delPrefix    struct{ base }
	listReversed struct{ base }
	listLoose    struct{ base }
	emptyDeletes struct{ base }
	truncating   struct{ base }
	aliasing     struct {
		base
		mu   sync.Mutex
		vals map[string][]byte
	}
	ignoreCtx struct{ base }
	firstCond struct{ base }
	plainConf struct{ base }
	revLE     struct{ base }
	racyTxn   struct{ base }
	splitTxn  struct{ base }
	noDelEvs  struct{ base }
	noFilter  struct{ base }
	neverDone struct{ base }
	replaying struct{ base }
	swapping  struct{ base }
	revokeNop struct{ base }
	keepNop   struct{ base }
	longTTL   struct{ base }
	shortTTL  struct{ base }
	noLease   struct{ base }
	keepLease struct{ base }
)

var mutants = []mutant{
	{"GetWrongError", "KV/GetMissing", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &getWrongErr{base{s}} }},
	{"PutStaleRevision", "KV/PutGet", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &putStaleRev{base{s}} }},
	{"DeleteMissingFails", "KV/DeleteMissing", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &delMissing{base{s}} }},
	{"DeleteByPrefix", "KV/Delete", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &delPrefix{base{s}} }},
	{"ListUnsorted", "KV/ListSortedPrefix", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &listReversed{base{s}} }},
	{"ListLoosePrefix", "KV/ListSortedPrefix", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &listLoose{base{s}} }},
	{"EmptyValueDeletes", "KV/EmptyValue", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &emptyDeletes{base{s}} }},
	{"TruncatesLargeValues", "KV/LargeValue", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &truncating{base{s}} }},
	{"AliasesValues", "KV/ValuesCopied", func(s dotmesh.ClusterStore) dotmesh.ClusterStore {
		return &aliasing{base: base{s}, vals: map[string][]byte{}}
	}},
	{"IgnoresContext", "KV/CanceledContext", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &ignoreCtx{base{s}} }},
	{"ChecksFirstConditionOnly", "Txn/AllOrNothing", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &firstCond{base{s}} }},
	{"ConflictNotWrapped", "Txn/IfAbsent", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &plainConf{base{s}} }},
	{"RevisionConditionUsesStoreRevision", "Txn/IfRevision", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &revLE{base{s}} }},
	{"NonAtomicCompareAndSwap", "Txn/ConcurrentCreateOneWinner", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &racyTxn{base{s}} }},
	{"NonAtomicCounter", "Txn/ConcurrentCounter", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &racyTxn{base{s}} }},
	{"TxnOpsAtSeveralRevisions", "Txn/AppliesAllOpsAtOneRevision", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &splitTxn{base{s}} }},
	{"WatchDropsDeletes", "Watch/PrefixAndOrder", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &noDelEvs{base{s}} }},
	{"WatchIgnoresPrefix", "Watch/PrefixAndOrder", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &noFilter{base{s}} }},
	{"WatchNeverCloses", "Watch/ClosedWhenContextEnds", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &neverDone{base{s}} }},
	{"WatchReplaysExisting", "Watch/OnlyChangesAfterWatch", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &replaying{base{s}} }},
	{"WatchOutOfOrder", "Watch/ConcurrentWritersInOrder", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &swapping{base{s}} }},
	{"RevokeKeepsKeys", "Lease/Revoke", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &revokeNop{base{s}} }},
	{"KeepAliveDoesNothing", "Lease/KeepAlive", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &keepNop{base{s}} }},
	{"LeasesNeverExpire", "Lease/Expires", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &longTTL{base{s}} }},
	{"LeasesExpireEarly", "Lease/Expires", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &shortTTL{base{s}} }},
	{"UnknownLeaseAccepted", "Lease/UnknownLease", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &noLease{base{s}} }},
	{"PutKeepsLease", "Lease/PutDetachesLease", func(s dotmesh.ClusterStore) dotmesh.ClusterStore { return &keepLease{base{s}} }},
}

func TestMutantsAreCaught(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant child process")
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			group, name, _ := strings.Cut(m.test, "/")
			cmd := exec.Command(os.Args[0], "-test.run", fmt.Sprintf("^TestMutantChild$/^%s$/^%s$", group, name), "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			failLine := "--- FAIL: TestMutantChild/" + m.test + " "
			if err == nil || !strings.Contains(string(out), failLine) {
				t.Errorf("suite subtest %s did not fail with mutant %s (exit: %v):\n%s", m.test, m.name, err, out)
			}
		})
	}
}

func TestMutantChild(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("only run by TestMutantsAreCaught")
	}
	i := slices.IndexFunc(mutants, func(m mutant) bool { return m.name == name })
	if i < 0 {
		t.Fatalf("unknown mutant %q", name)
	}
	storetest.Run(t, func(t *testing.T) dotmesh.ClusterStore {
		s, err := bboltstore.Open(filepath.Join(t.TempDir(), "cluster.db"), bboltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return mutants[i].build(s)
	})
}

// ---- the mutants ----

func (m *getWrongErr) Get(ctx context.Context, key string) (dotmesh.KV, error) {
	kv, err := m.ClusterStore.Get(ctx, key)
	if errors.Is(err, dotmesh.ErrNotFound) {
		err = errors.New("no such key")
	}
	return kv, err
}

func (m *putStaleRev) Put(ctx context.Context, key string, v []byte) (int64, error) {
	rev, err := m.ClusterStore.Put(ctx, key, v)
	return rev - 1, err
}

func (m *delMissing) Delete(ctx context.Context, key string) error {
	if _, err := m.ClusterStore.Get(ctx, key); err != nil {
		return err
	}
	return m.ClusterStore.Delete(ctx, key)
}

func (m *delPrefix) Delete(ctx context.Context, key string) error {
	kvs, err := m.ClusterStore.List(ctx, key)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := m.ClusterStore.Delete(ctx, kv.Key); err != nil {
			return err
		}
	}
	return nil
}

func (m *listReversed) List(ctx context.Context, prefix string) ([]dotmesh.KV, error) {
	kvs, err := m.ClusterStore.List(ctx, prefix)
	slices.Reverse(kvs)
	return kvs, err
}

func (m *listLoose) List(ctx context.Context, prefix string) ([]dotmesh.KV, error) {
	return m.ClusterStore.List(ctx, strings.TrimSuffix(prefix, "/"))
}

func (m *emptyDeletes) Put(ctx context.Context, key string, v []byte) (int64, error) {
	if len(v) == 0 {
		return 1 << 40, m.ClusterStore.Delete(ctx, key)
	}
	return m.ClusterStore.Put(ctx, key, v)
}

func (m *truncating) Put(ctx context.Context, key string, v []byte) (int64, error) {
	return m.ClusterStore.Put(ctx, key, v[:min(len(v), 64<<10)])
}

func (m *aliasing) Put(ctx context.Context, key string, v []byte) (int64, error) {
	m.mu.Lock()
	m.vals[key] = v
	m.mu.Unlock()
	return m.ClusterStore.Put(ctx, key, v)
}

func (m *aliasing) Get(ctx context.Context, key string) (dotmesh.KV, error) {
	kv, err := m.ClusterStore.Get(ctx, key)
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.vals[key]; ok && err == nil {
		kv.Value = v
	}
	return kv, err
}

func (m *ignoreCtx) Get(_ context.Context, key string) (dotmesh.KV, error) {
	return m.ClusterStore.Get(context.Background(), key)
}

func (m *ignoreCtx) Put(_ context.Context, key string, v []byte) (int64, error) {
	return m.ClusterStore.Put(context.Background(), key, v)
}

func (m *firstCond) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	return m.ClusterStore.Txn(ctx, conds[:min(len(conds), 1)], ops)
}

func (m *plainConf) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	rev, err := m.ClusterStore.Txn(ctx, conds, ops)
	if err != nil {
		err = errors.New(err.Error())
	}
	return rev, err
}

// revLE accepts IfRevision(k, r) whenever k was last written at or before r.
func (m *revLE) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	conds = slices.Clone(conds)
	for i, c := range conds {
		if kv, err := m.ClusterStore.Get(ctx, c.Key); err == nil && c.Revision > 0 && kv.Revision <= c.Revision {
			conds[i].Revision = kv.Revision
		}
	}
	return m.ClusterStore.Txn(ctx, conds, ops)
}

// racyTxn checks conditions, then writes: the classic lost update.
func (m *racyTxn) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	for _, c := range conds {
		if _, err := m.ClusterStore.Txn(ctx, []dotmesh.Condition{c}, nil); err != nil {
			return 0, err
		}
	}
	time.Sleep(time.Millisecond)
	return m.ClusterStore.Txn(ctx, nil, ops)
}

func (m *splitTxn) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	var rev int64
	for i, op := range ops {
		var c []dotmesh.Condition
		if i == 0 {
			c = conds
		}
		r, err := m.ClusterStore.Txn(ctx, c, []dotmesh.Op{op})
		if err != nil {
			return 0, err
		}
		rev = r
	}
	return rev, nil
}

func forward(ctx context.Context, in <-chan dotmesh.Event, f func(ev dotmesh.Event, out chan<- dotmesh.Event)) <-chan dotmesh.Event {
	out := make(chan dotmesh.Event, 1024)
	go func() {
		defer close(out)
		for ev := range in {
			f(ev, out)
		}
	}()
	return out
}

func (m *noDelEvs) Watch(ctx context.Context, prefix string) (<-chan dotmesh.Event, error) {
	in, err := m.ClusterStore.Watch(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return forward(ctx, in, func(ev dotmesh.Event, out chan<- dotmesh.Event) {
		if ev.Type != dotmesh.EventDelete {
			out <- ev
		}
	}), nil
}

func (m *noFilter) Watch(ctx context.Context, prefix string) (<-chan dotmesh.Event, error) {
	return m.ClusterStore.Watch(ctx, "")
}

func (m *neverDone) Watch(ctx context.Context, prefix string) (<-chan dotmesh.Event, error) {
	in, err := m.ClusterStore.Watch(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make(chan dotmesh.Event, 1024)
	go func() {
		for ev := range in {
			out <- ev
		}
	}()
	return out, nil
}

func (m *replaying) Watch(ctx context.Context, prefix string) (<-chan dotmesh.Event, error) {
	kvs, err := m.ClusterStore.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	in, err := m.ClusterStore.Watch(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make(chan dotmesh.Event, 1024)
	for _, kv := range kvs {
		out <- dotmesh.Event{Type: dotmesh.EventPut, KV: kv}
	}
	go func() {
		defer close(out)
		for ev := range in {
			out <- ev
		}
	}()
	return out, nil
}

func (m *swapping) Watch(ctx context.Context, prefix string) (<-chan dotmesh.Event, error) {
	in, err := m.ClusterStore.Watch(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var held *dotmesh.Event
	return forward(ctx, in, func(ev dotmesh.Event, out chan<- dotmesh.Event) {
		if held == nil {
			held = &ev
			return
		}
		out <- ev
		out <- *held
		held = nil
	}), nil
}

func (m *revokeNop) Revoke(ctx context.Context, id dotmesh.LeaseID) error { return nil }

func (m *keepNop) KeepAlive(ctx context.Context, id dotmesh.LeaseID) error { return nil }

func (m *longTTL) Grant(ctx context.Context, ttl time.Duration) (dotmesh.LeaseID, error) {
	return m.ClusterStore.Grant(ctx, ttl*100)
}

func (m *shortTTL) Grant(ctx context.Context, ttl time.Duration) (dotmesh.LeaseID, error) {
	return m.ClusterStore.Grant(ctx, ttl/10)
}

func (m *noLease) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	ops = slices.Clone(ops)
	for i := range ops {
		ops[i].Lease = 0
	}
	return m.ClusterStore.Txn(ctx, conds, ops)
}

func (m *keepLease) Put(ctx context.Context, key string, v []byte) (int64, error) {
	if kv, err := m.ClusterStore.Get(ctx, key); err == nil && kv.Lease != 0 {
		return m.ClusterStore.Txn(ctx, nil, []dotmesh.Op{{Key: key, Value: v, Lease: kv.Lease}})
	}
	return m.ClusterStore.Put(ctx, key, v)
}
