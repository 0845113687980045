// Package storetest is the conformance suite for dotmesh.ClusterStore.
//
// Every store implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) dotmesh.ClusterStore {
//			s, err := mystore.Open(...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite checks the contract written in the godoc of
// dotmesh.ClusterStore, nothing implementation-specific. Lease tests use
// TTLs of LeaseTTL and wait for expiry at most ExpiryDeadline; they run in
// parallel, so open may be called concurrently.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// LeaseTTL is the TTL of leases the suite expects to expire. 2s because
// etcd rounds shorter TTLs up to about that much anyway.
const LeaseTTL = 2 * time.Second

// ExpiryDeadline bounds how long after its TTL a lease may take to expire.
const ExpiryDeadline = 10 * time.Second

// eventWait bounds how long the suite waits for one watch event.
const eventWait = 10 * time.Second

// Run runs the conformance suite. open must return a fresh, empty store
// for each call; the suite closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) dotmesh.ClusterStore) {
	t.Helper()
	newStore := func(t *testing.T) dotmesh.ClusterStore {
		t.Helper()
		s := open(t)
		if s == nil {
			t.Fatal("open returned a nil store")
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	// Each group returns only when its (possibly parallel) subtests are
	// done, so Run itself returns only when the whole suite has run.
	t.Run("KV", func(t *testing.T) {
		for _, tc := range kvTests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
		}
	})
	t.Run("Txn", func(t *testing.T) {
		for _, tc := range txnTests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
		}
	})
	t.Run("Watch", func(t *testing.T) {
		for _, tc := range watchTests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
		}
	})
	t.Run("Lease", func(t *testing.T) {
		for _, tc := range leaseTests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel() // these mostly wait for the clock
				tc.fn(t, newStore(t))
			})
		}
	})
}

type storeTest struct {
	name string
	fn   func(t *testing.T, s dotmesh.ClusterStore)
}

// ---- helpers ----

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, s dotmesh.ClusterStore, key, value string) int64 {
	t.Helper()
	rev, err := s.Put(testCtx(t), key, []byte(value))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if rev <= 0 {
		t.Fatalf("Put(%q) returned revision %d; revisions must be positive", key, rev)
	}
	return rev
}

func get(t *testing.T, s dotmesh.ClusterStore, key string) dotmesh.KV {
	t.Helper()
	kv, err := s.Get(testCtx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if kv.Key != key {
		t.Fatalf("Get(%q) returned key %q", key, kv.Key)
	}
	return kv
}

// assertValue checks key's value and, if rev > 0, its revision.
func assertValue(t *testing.T, s dotmesh.ClusterStore, key, value string, rev int64) {
	t.Helper()
	kv := get(t, s, key)
	if string(kv.Value) != value {
		t.Errorf("Get(%q) value = %q, want %q", key, kv.Value, value)
	}
	if rev > 0 && kv.Revision != rev {
		t.Errorf("Get(%q) revision = %d, want %d (the revision of its last write)", key, kv.Revision, rev)
	}
}

func assertMissing(t *testing.T, s dotmesh.ClusterStore, key string) {
	t.Helper()
	kv, err := s.Get(testCtx(t), key)
	if !errors.Is(err, dotmesh.ErrNotFound) {
		t.Errorf("Get(%q) = %+v, %v; want an error wrapping ErrNotFound", key, kv, err)
	}
}

func assertIs(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want one wrapping %v", what, err, want)
	}
}

func listKeys(t *testing.T, s dotmesh.ClusterStore, prefix string) []string {
	t.Helper()
	kvs, err := s.List(testCtx(t), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return keys
}

func watch(t *testing.T, s dotmesh.ClusterStore, prefix string) <-chan dotmesh.Event {
	t.Helper()
	ch, err := s.Watch(testCtx(t), prefix)
	if err != nil {
		t.Fatalf("Watch(%q): %v", prefix, err)
	}
	return ch
}

func nextEvent(t *testing.T, ch <-chan dotmesh.Event) dotmesh.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed unexpectedly")
		}
		return ev
	case <-time.After(eventWait):
		t.Fatalf("no watch event within %v", eventWait)
	}
	panic("unreachable")
}

// eventsUntil collects events up to and including the first one on key.
func eventsUntil(t *testing.T, ch <-chan dotmesh.Event, key string) []dotmesh.Event {
	t.Helper()
	var evs []dotmesh.Event
	for {
		ev := nextEvent(t, ch)
		evs = append(evs, ev)
		if ev.KV.Key == key {
			return evs
		}
		if len(evs) > 10000 {
			t.Fatalf("no event on %q among 10000 events", key)
		}
	}
}

func describe(evs []dotmesh.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %s %s=%q rev %d lease %d", ev.Type, ev.KV.Key, ev.KV.Value, ev.KV.Revision, ev.KV.Lease)
	}
	return b.String()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(deadline time.Duration, cond func() bool) bool {
	end := time.Now().Add(deadline)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// ---- KV ----

var kvTests = []storeTest{
	{"GetMissing", func(t *testing.T, s dotmesh.ClusterStore) {
		assertMissing(t, s, "nope")
		put(t, s, "a/b", "x")
		assertMissing(t, s, "a")  // a prefix of a key is not a key
		assertMissing(t, s, "a/") // nor is a parent "directory"
	}},
	{"PutGet", func(t *testing.T, s dotmesh.ClusterStore) {
		r1 := put(t, s, "a/b", "v1")
		kv := get(t, s, "a/b")
		if string(kv.Value) != "v1" || kv.Revision != r1 || kv.Lease != 0 {
			t.Errorf("Get after Put = {%q rev %d lease %d}, want {\"v1\" rev %d lease 0}", kv.Value, kv.Revision, kv.Lease, r1)
		}
		r2 := put(t, s, "a/b", "v2")
		if r2 <= r1 {
			t.Errorf("second Put returned revision %d, not above the first %d", r2, r1)
		}
		assertValue(t, s, "a/b", "v2", r2)
		// Another key's write moves the store revision, not this key's.
		r3 := put(t, s, "a/c", "v3")
		if r3 <= r2 {
			t.Errorf("Put of another key returned revision %d, not above %d", r3, r2)
		}
		assertValue(t, s, "a/b", "v2", r2)
		assertValue(t, s, "a/c", "v3", r3)
	}},
	{"RevisionsIncrease", func(t *testing.T, s dotmesh.ClusterStore) {
		var last int64
		for i := range 30 {
			key := fmt.Sprintf("r/%d", i%4)
			rev := put(t, s, key, fmt.Sprint(i))
			if rev <= last {
				t.Fatalf("Put #%d returned revision %d, not above the previous %d", i, rev, last)
			}
			last = rev
			if i%5 == 4 {
				if err := s.Delete(testCtx(t), key); err != nil {
					t.Fatalf("Delete(%q): %v", key, err)
				}
			}
		}
	}},
	{"Delete", func(t *testing.T, s dotmesh.ClusterStore) {
		put(t, s, "d/a", "1")
		put(t, s, "d/ab", "2")
		if err := s.Delete(testCtx(t), "d/a"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		assertMissing(t, s, "d/a")
		assertValue(t, s, "d/ab", "2", 0) // Delete is exact, not by prefix
		if got := listKeys(t, s, "d/"); !slices.Equal(got, []string{"d/ab"}) {
			t.Errorf("List after Delete = %q, want [d/ab]", got)
		}
		// The key can be written again.
		r := put(t, s, "d/a", "3")
		assertValue(t, s, "d/a", "3", r)
	}},
	{"DeleteMissing", func(t *testing.T, s dotmesh.ClusterStore) {
		if err := s.Delete(testCtx(t), "never/written"); err != nil {
			t.Errorf("Delete of a missing key: %v; want no error", err)
		}
		put(t, s, "once", "x")
		for i := range 2 {
			if err := s.Delete(testCtx(t), "once"); err != nil {
				t.Errorf("Delete #%d: %v; want no error", i+1, err)
			}
		}
	}},
	{"ListSortedPrefix", func(t *testing.T, s dotmesh.ClusterStore) {
		keys := []string{
			"dots/b", "dots/a", "dots/c/d", "dots", "dotsx", "dotsx/a", "dot",
			"dots/a/", "dots/A", "dots/a0", "other/dots/a", "dots/ä", "dots/-",
		}
		r := rand.New(rand.NewPCG(1, 2))
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		revs := map[string]int64{}
		for _, k := range keys {
			revs[k] = put(t, s, k, "value of "+k)
		}
		kvs, err := s.List(testCtx(t), "dots/")
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		want := []string{"dots/-", "dots/A", "dots/a", "dots/a/", "dots/a0", "dots/b", "dots/c/d", "dots/ä"}
		var got []string
		for _, kv := range kvs {
			got = append(got, kv.Key)
			if string(kv.Value) != "value of "+kv.Key {
				t.Errorf("List: %q has value %q, want %q", kv.Key, kv.Value, "value of "+kv.Key)
			}
			if kv.Revision != revs[kv.Key] {
				t.Errorf("List: %q has revision %d, want %d (its Put)", kv.Key, kv.Revision, revs[kv.Key])
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("List(\"dots/\") = %q\nwant %q (byte-wise sorted, exact prefix)", got, want)
		}
		// A prefix is a plain byte prefix, not a path component.
		if got, want := listKeys(t, s, "dots/a"), []string{"dots/a", "dots/a/", "dots/a0"}; !slices.Equal(got, want) {
			t.Errorf("List(\"dots/a\") = %q, want %q", got, want)
		}
		if got := listKeys(t, s, "nothing/"); len(got) != 0 {
			t.Errorf("List(\"nothing/\") = %q, want nothing", got)
		}
		all := slices.Clone(keys)
		slices.Sort(all)
		if got := listKeys(t, s, ""); !slices.Equal(got, all) {
			t.Errorf("List(\"\") = %q\nwant every key %q", got, all)
		}
	}},
	{"EmptyValue", func(t *testing.T, s dotmesh.ClusterStore) {
		r1, err := s.Put(testCtx(t), "e/empty", []byte{})
		if err != nil {
			t.Fatalf("Put of an empty value: %v", err)
		}
		r2, err := s.Put(testCtx(t), "e/nil", nil)
		if err != nil {
			t.Fatalf("Put of a nil value: %v", err)
		}
		assertValue(t, s, "e/empty", "", r1)
		assertValue(t, s, "e/nil", "", r2)
		if got := listKeys(t, s, "e/"); !slices.Equal(got, []string{"e/empty", "e/nil"}) {
			t.Errorf("List = %q, want both keys with empty values", got)
		}
	}},
	{"LargeValue", func(t *testing.T, s dotmesh.ClusterStore) {
		big := randomBytes(1<<20, 7)
		rev, err := s.Put(testCtx(t), "big", big)
		if err != nil {
			t.Fatalf("Put of 1 MiB: %v", err)
		}
		kv := get(t, s, "big")
		if !bytes.Equal(kv.Value, big) || kv.Revision != rev {
			t.Errorf("Get of a 1 MiB value: %d bytes, equal %v, revision %d (want %d)", len(kv.Value), bytes.Equal(kv.Value, big), kv.Revision, rev)
		}
		kvs, err := s.List(testCtx(t), "big")
		if err != nil || len(kvs) != 1 || !bytes.Equal(kvs[0].Value, big) {
			t.Errorf("List of a 1 MiB value: %d kvs, err %v", len(kvs), err)
		}
	}},
	{"ValuesCopied", func(t *testing.T, s dotmesh.ClusterStore) {
		ctx := testCtx(t)
		v := []byte("hello")
		if _, err := s.Put(ctx, "c/put", v); err != nil {
			t.Fatal(err)
		}
		v[0] = 'X'
		assertValue(t, s, "c/put", "hello", 0)

		got := get(t, s, "c/put")
		got.Value[0] = 'Y'
		assertValue(t, s, "c/put", "hello", 0)

		kvs, err := s.List(ctx, "c/")
		if err != nil || len(kvs) != 1 {
			t.Fatalf("List: %v %v", kvs, err)
		}
		kvs[0].Value[0] = 'Z'
		assertValue(t, s, "c/put", "hello", 0)

		tv := []byte("world")
		if _, err := s.Txn(ctx, nil, []dotmesh.Op{dotmesh.PutOp("c/txn", tv)}); err != nil {
			t.Fatal(err)
		}
		tv[0] = 'X'
		assertValue(t, s, "c/txn", "world", 0)
	}},
	{"CanceledContext", func(t *testing.T, s dotmesh.ClusterStore) {
		put(t, s, "x/exists", "v")
		lease, err := s.Grant(testCtx(t), time.Minute)
		if err != nil {
			t.Fatalf("Grant: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = s.Get(ctx, "x/exists")
		assertIs(t, "Get with a canceled context", err, context.Canceled)
		_, err = s.List(ctx, "x/")
		assertIs(t, "List with a canceled context", err, context.Canceled)
		_, err = s.Put(ctx, "x/new", []byte("v"))
		assertIs(t, "Put with a canceled context", err, context.Canceled)
		err = s.Delete(ctx, "x/exists")
		assertIs(t, "Delete with a canceled context", err, context.Canceled)
		_, err = s.Txn(ctx, nil, []dotmesh.Op{dotmesh.PutOp("x/txn", []byte("v"))})
		assertIs(t, "Txn with a canceled context", err, context.Canceled)
		_, err = s.Grant(ctx, time.Minute)
		assertIs(t, "Grant with a canceled context", err, context.Canceled)
		err = s.KeepAlive(ctx, lease)
		assertIs(t, "KeepAlive with a canceled context", err, context.Canceled)
		err = s.Revoke(ctx, lease)
		assertIs(t, "Revoke with a canceled context", err, context.Canceled)
		// Nothing was written.
		assertMissing(t, s, "x/new")
		assertMissing(t, s, "x/txn")
		assertValue(t, s, "x/exists", "v", 0)
		if err := s.KeepAlive(testCtx(t), lease); err != nil {
			t.Errorf("lease gone after a canceled Revoke: %v", err)
		}
		// Watch either refuses or returns a channel that closes at once.
		ch, err := s.Watch(ctx, "x/")
		if err == nil {
			select {
			case _, ok := <-ch:
				if ok {
					t.Error("Watch with a canceled context delivered an event")
				}
			case <-time.After(eventWait):
				t.Error("Watch with a canceled context returned a channel that stays open")
			}
		}
	}},
}

// ---- Txn ----

var txnTests = []storeTest{
	{"AppliesAllOpsAtOneRevision", func(t *testing.T, s dotmesh.ClusterStore) {
		before := put(t, s, "t/del", "x")
		put(t, s, "t/keep", "k")
		rev, err := s.Txn(testCtx(t), nil, []dotmesh.Op{
			dotmesh.PutOp("t/a", []byte("A")),
			dotmesh.PutOp("t/b", []byte("B")),
			dotmesh.DeleteOp("t/del"),
		})
		if err != nil {
			t.Fatalf("Txn: %v", err)
		}
		if rev <= before {
			t.Errorf("Txn returned revision %d, not above the earlier %d", rev, before)
		}
		assertValue(t, s, "t/a", "A", rev)
		assertValue(t, s, "t/b", "B", rev)
		assertMissing(t, s, "t/del")
		assertValue(t, s, "t/keep", "k", 0)
	}},
	{"IfAbsent", func(t *testing.T, s dotmesh.ClusterStore) {
		ctx := testCtx(t)
		r1, err := s.Txn(ctx, []dotmesh.Condition{dotmesh.IfAbsent("t/x")}, []dotmesh.Op{dotmesh.PutOp("t/x", []byte("first"))})
		if err != nil {
			t.Fatalf("Txn IfAbsent on a missing key: %v", err)
		}
		assertValue(t, s, "t/x", "first", r1)
		_, err = s.Txn(ctx, []dotmesh.Condition{dotmesh.IfAbsent("t/x")}, []dotmesh.Op{dotmesh.PutOp("t/x", []byte("second"))})
		assertIs(t, "Txn IfAbsent on an existing key", err, dotmesh.ErrConflict)
		assertValue(t, s, "t/x", "first", r1)
		// Absent again after a delete.
		if err := s.Delete(ctx, "t/x"); err != nil {
			t.Fatal(err)
		}
		r3, err := s.Txn(ctx, []dotmesh.Condition{dotmesh.IfAbsent("t/x")}, []dotmesh.Op{dotmesh.PutOp("t/x", []byte("third"))})
		if err != nil {
			t.Fatalf("Txn IfAbsent after Delete: %v", err)
		}
		assertValue(t, s, "t/x", "third", r3)
	}},
	{"IfRevision", func(t *testing.T, s dotmesh.ClusterStore) {
		ctx := testCtx(t)
		r1 := put(t, s, "t/k", "v1")
		r2, err := s.Txn(ctx, []dotmesh.Condition{dotmesh.IfRevision("t/k", r1)}, []dotmesh.Op{dotmesh.PutOp("t/k", []byte("v2"))})
		if err != nil {
			t.Fatalf("Txn IfRevision with the current revision: %v", err)
		}
		assertValue(t, s, "t/k", "v2", r2)
		_, err = s.Txn(ctx, []dotmesh.Condition{dotmesh.IfRevision("t/k", r1)}, []dotmesh.Op{dotmesh.PutOp("t/k", []byte("v3"))})
		assertIs(t, "Txn IfRevision with a stale revision", err, dotmesh.ErrConflict)
		assertValue(t, s, "t/k", "v2", r2)

		// The condition is on the key's revision, not the store's.
		r4 := put(t, s, "t/other", "o")
		_, err = s.Txn(ctx, []dotmesh.Condition{dotmesh.IfRevision("t/k", r4)}, []dotmesh.Op{dotmesh.PutOp("t/k", []byte("v4"))})
		assertIs(t, "Txn IfRevision with the store's (not the key's) revision", err, dotmesh.ErrConflict)
		assertValue(t, s, "t/k", "v2", r2)

		_, err = s.Txn(ctx, []dotmesh.Condition{dotmesh.IfRevision("t/missing", r2)}, []dotmesh.Op{dotmesh.PutOp("t/missing", []byte("x"))})
		assertIs(t, "Txn IfRevision on a missing key", err, dotmesh.ErrConflict)
		assertMissing(t, s, "t/missing")

		if _, err := s.Txn(ctx, []dotmesh.Condition{dotmesh.IfRevision("t/k", r2)}, []dotmesh.Op{dotmesh.DeleteOp("t/k")}); err != nil {
			t.Fatalf("Txn IfRevision + delete: %v", err)
		}
		assertMissing(t, s, "t/k")
	}},
	{"AllOrNothing", func(t *testing.T, s dotmesh.ClusterStore) {
		ctx := testCtx(t)
		ra := put(t, s, "t/a", "1")
		rb := put(t, s, "t/b-exists", "b")
		rd := put(t, s, "t/d", "d")
		ch := watch(t, s, "t/")
		// The first condition holds, the second fails.
		_, err := s.Txn(ctx,
			[]dotmesh.Condition{dotmesh.IfRevision("t/a", ra), dotmesh.IfAbsent("t/b-exists")},
			[]dotmesh.Op{dotmesh.PutOp("t/a", []byte("2")), dotmesh.PutOp("t/c", []byte("3")), dotmesh.DeleteOp("t/d")})
		assertIs(t, "Txn with a failing second condition", err, dotmesh.ErrConflict)
		if err != nil && !strings.Contains(err.Error(), "t/b-exists") {
			t.Errorf("conflict error %q does not name the failed condition's key t/b-exists", err)
		}
		assertValue(t, s, "t/a", "1", ra)
		assertValue(t, s, "t/b-exists", "b", rb)
		assertValue(t, s, "t/d", "d", rd)
		assertMissing(t, s, "t/c")

		// The first condition fails, the second holds.
		_, err = s.Txn(ctx,
			[]dotmesh.Condition{dotmesh.IfAbsent("t/a"), dotmesh.IfRevision("t/b-exists", rb)},
			[]dotmesh.Op{dotmesh.PutOp("t/c", []byte("3"))})
		assertIs(t, "Txn with a failing first condition", err, dotmesh.ErrConflict)
		if err != nil && !strings.Contains(err.Error(), "t/a") {
			t.Errorf("conflict error %q does not name the failed condition's key t/a", err)
		}
		assertMissing(t, s, "t/c")

		// Watchers see nothing of failed txns: the next event is the sentinel.
		rs := put(t, s, "t/sentinel", "s")
		if evs := eventsUntil(t, ch, "t/sentinel"); len(evs) != 1 || evs[0].KV.Revision != rs {
			t.Errorf("failed txns produced watch events:%s", describe(evs))
		}
	}},
	{"ConcurrentCreateOneWinner", func(t *testing.T, s dotmesh.ClusterStore) {
		const rounds, workers = 20, 8
		for r := range rounds {
			key := fmt.Sprintf("race/%d", r)
			start := make(chan struct{})
			errs := make(chan error, workers)
			for w := range workers {
				go func() {
					<-start
					_, err := s.Txn(testCtx(t), []dotmesh.Condition{dotmesh.IfAbsent(key)},
						[]dotmesh.Op{dotmesh.PutOp(key, []byte(fmt.Sprint(w)))})
					if err != nil {
						err = fmt.Errorf("worker %d: %w", w, err)
					}
					errs <- err
				}()
			}
			close(start)
			winners := 0
			for range workers {
				err := <-errs
				switch {
				case err == nil:
					winners++
				case !errors.Is(err, dotmesh.ErrConflict):
					t.Errorf("round %d: loser got %v, want an error wrapping ErrConflict", r, err)
				}
			}
			if winners != 1 {
				t.Fatalf("round %d: %d of %d concurrent IfAbsent txns succeeded, want exactly 1", r, winners, workers)
			}
		}
	}},
	{"ConcurrentCounter", func(t *testing.T, s dotmesh.ClusterStore) {
		const workers, increments = 8, 25
		errs := make(chan error, workers)
		revs := make(chan int64, workers*increments)
		for range workers {
			go func() {
				errs <- func() error {
					ctx := testCtx(t)
					for done := 0; done < increments; {
						n, cond := 0, dotmesh.IfAbsent("counter")
						kv, err := s.Get(ctx, "counter")
						switch {
						case err == nil:
							if _, err := fmt.Sscan(string(kv.Value), &n); err != nil {
								return fmt.Errorf("counter value %q: %v", kv.Value, err)
							}
							cond = dotmesh.IfRevision("counter", kv.Revision)
						case !errors.Is(err, dotmesh.ErrNotFound):
							return err
						}
						rev, err := s.Txn(ctx, []dotmesh.Condition{cond}, []dotmesh.Op{dotmesh.PutOp("counter", []byte(fmt.Sprint(n+1)))})
						switch {
						case err == nil:
							done++
							revs <- rev
						case !errors.Is(err, dotmesh.ErrConflict):
							return err
						}
					}
					return nil
				}()
			}()
		}
		for range workers {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		close(revs)
		seen := map[int64]bool{}
		for rev := range revs {
			if seen[rev] {
				t.Errorf("two successful txns returned the same revision %d", rev)
			}
			seen[rev] = true
		}
		assertValue(t, s, "counter", fmt.Sprint(workers*increments), 0)
	}},
}

// ---- Watch ----

var watchTests = []storeTest{
	{"PrefixAndOrder", func(t *testing.T, s dotmesh.ClusterStore) {
		ctx := testCtx(t)
		ch := watch(t, s, "w/")
		r1 := put(t, s, "w/a", "1")
		put(t, s, "x/a", "no")
		put(t, s, "w", "no")
		put(t, s, "wx/a", "no")
		r2 := put(t, s, "w/b", "2")
		if err := s.Delete(ctx, "w/a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "x/a"); err != nil {
			t.Fatal(err)
		}
		r3 := put(t, s, "w/zz", "end")
		evs := eventsUntil(t, ch, "w/zz")
		type ev struct {
			typ   dotmesh.EventType
			key   string
			value string
		}
		want := []ev{{dotmesh.EventPut, "w/a", "1"}, {dotmesh.EventPut, "w/b", "2"}, {dotmesh.EventDelete, "w/a", ""}, {dotmesh.EventPut, "w/zz", "end"}}
		var got []ev
		for _, e := range evs {
			got = append(got, ev{e.Type, e.KV.Key, string(e.KV.Value)})
		}
		if !slices.Equal(got, want) {
			t.Fatalf("watch events:%s\nwant put w/a, put w/b, delete w/a, put w/zz", describe(evs))
		}
		if evs[0].KV.Revision != r1 || evs[1].KV.Revision != r2 || evs[3].KV.Revision != r3 {
			t.Errorf("put events carry revisions %d %d %d, want those Put returned: %d %d %d",
				evs[0].KV.Revision, evs[1].KV.Revision, evs[3].KV.Revision, r1, r2, r3)
		}
		if d := evs[2].KV.Revision; d <= r2 || d >= r3 {
			t.Errorf("delete event revision %d, want between %d and %d (the revision of the delete)", d, r2, r3)
		}
	}},
	{"OnlyChangesAfterWatch", func(t *testing.T, s dotmesh.ClusterStore) {
		put(t, s, "w/old", "before")
		ch := watch(t, s, "w/")
		rev := put(t, s, "w/new", "after")
		ev := nextEvent(t, ch)
		if ev.KV.Key != "w/new" || ev.KV.Revision != rev {
			t.Errorf("first event = %s; want the put of w/new made after Watch returned", describe([]dotmesh.Event{ev}))
		}
	}},
	{"TxnEvents", func(t *testing.T, s dotmesh.ClusterStore) {
		put(t, s, "w/c", "old")
		ch := watch(t, s, "w/")
		rev, err := s.Txn(testCtx(t), nil, []dotmesh.Op{
			dotmesh.PutOp("w/a", []byte("A")),
			dotmesh.PutOp("w/b", []byte("B")),
			dotmesh.DeleteOp("w/c"),
			dotmesh.PutOp("x/other", []byte("no")),
		})
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, "w/zz", "end")
		evs := eventsUntil(t, ch, "w/zz")
		if len(evs) != 4 {
			t.Fatalf("events:%s\nwant the txn's 3 changes under w/ and then w/zz", describe(evs))
		}
		got := map[string]dotmesh.EventType{}
		for _, ev := range evs[:3] {
			got[ev.KV.Key] = ev.Type
			if ev.KV.Revision != rev {
				t.Errorf("txn event on %s has revision %d, want the txn's %d", ev.KV.Key, ev.KV.Revision, rev)
			}
		}
		if got["w/a"] != dotmesh.EventPut || got["w/b"] != dotmesh.EventPut || got["w/c"] != dotmesh.EventDelete {
			t.Errorf("txn events:%s\nwant put w/a, put w/b, delete w/c", describe(evs[:3]))
		}
	}},
	{"ConcurrentWritersInOrder", func(t *testing.T, s dotmesh.ClusterStore) {
		const writers, each = 4, 40
		ch := watch(t, s, "c/")
		type res struct {
			key string
			rev int64
			err error
		}
		results := make(chan res, writers*each)
		for w := range writers {
			go func() {
				for i := range each {
					key := fmt.Sprintf("c/%d/%d", w, i)
					rev, err := s.Put(testCtx(t), key, []byte(key))
					results <- res{key, rev, err}
				}
			}()
		}
		revs := map[string]int64{}
		for range writers * each {
			r := <-results
			if r.err != nil {
				t.Fatal(r.err)
			}
			revs[r.key] = r.rev
		}
		var last int64
		for i := range writers * each {
			ev := nextEvent(t, ch)
			if ev.KV.Revision <= last {
				t.Fatalf("event %d (%s) has revision %d after %d: not in revision order", i, ev.KV.Key, ev.KV.Revision, last)
			}
			last = ev.KV.Revision
			want, ok := revs[ev.KV.Key]
			if !ok {
				t.Fatalf("unexpected or repeated event on %s", ev.KV.Key)
			}
			if ev.KV.Revision != want || string(ev.KV.Value) != ev.KV.Key {
				t.Errorf("event on %s: revision %d value %q, want %d %q", ev.KV.Key, ev.KV.Revision, ev.KV.Value, want, ev.KV.Key)
			}
			delete(revs, ev.KV.Key)
		}
	}},
	{"SeveralWatchers", func(t *testing.T, s dotmesh.ClusterStore) {
		all := watch(t, s, "")
		m := watch(t, s, "m/")
		ma := watch(t, s, "m/a")
		ma2 := watch(t, s, "m/a")
		put(t, s, "m/a", "1")
		put(t, s, "m/b", "2")
		put(t, s, "n/a", "3")
		put(t, s, "m/ab", "4")
		put(t, s, "zz", "end")
		keys := func(ch <-chan dotmesh.Event, until string) []string {
			var ks []string
			for _, ev := range eventsUntil(t, ch, until) {
				ks = append(ks, ev.KV.Key)
			}
			return ks
		}
		if got, want := keys(all, "zz"), []string{"m/a", "m/b", "n/a", "m/ab", "zz"}; !slices.Equal(got, want) {
			t.Errorf("watch on \"\" saw %q, want %q", got, want)
		}
		if got, want := keys(m, "m/ab"), []string{"m/a", "m/b", "m/ab"}; !slices.Equal(got, want) {
			t.Errorf("watch on m/ saw %q, want %q", got, want)
		}
		for _, ch := range []<-chan dotmesh.Event{ma, ma2} {
			if got, want := keys(ch, "m/ab"), []string{"m/a", "m/ab"}; !slices.Equal(got, want) {
				t.Errorf("watch on m/a saw %q, want %q", got, want)
			}
		}
	}},
	{"ValuesCopied", func(t *testing.T, s dotmesh.ClusterStore) {
		ch := watch(t, s, "w/")
		put(t, s, "w/v", "hello")
		ev := nextEvent(t, ch)
		if string(ev.KV.Value) != "hello" {
			t.Fatalf("event value %q, want hello", ev.KV.Value)
		}
		ev.KV.Value[0] = 'X'
		assertValue(t, s, "w/v", "hello", 0)
	}},
	{"ClosedWhenContextEnds", func(t *testing.T, s dotmesh.ClusterStore) {
		ctx, cancel := context.WithCancel(testCtx(t))
		ch, err := s.Watch(ctx, "w/")
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, "w/a", "1")
		if ev := nextEvent(t, ch); ev.KV.Key != "w/a" {
			t.Fatalf("first event on %s, want w/a", ev.KV.Key)
		}
		cancel()
		deadline := time.After(eventWait)
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					// The store still works for others.
					put(t, s, "w/b", "2")
					return
				}
			case <-deadline:
				t.Fatalf("watch channel still open %v after its context ended", eventWait)
			}
		}
	}},
}

// ---- Lease ----

func grant(t *testing.T, s dotmesh.ClusterStore, ttl time.Duration) dotmesh.LeaseID {
	t.Helper()
	id, err := s.Grant(testCtx(t), ttl)
	if err != nil {
		t.Fatalf("Grant(%v): %v", ttl, err)
	}
	if id == 0 {
		t.Fatalf("Grant returned lease id 0, which means none")
	}
	return id
}

func putLeased(t *testing.T, s dotmesh.ClusterStore, key, value string, id dotmesh.LeaseID) int64 {
	t.Helper()
	rev, err := s.Txn(testCtx(t), nil, []dotmesh.Op{{Key: key, Value: []byte(value), Lease: id}})
	if err != nil {
		t.Fatalf("Txn put %q with lease %d: %v", key, id, err)
	}
	return rev
}

func exists(t *testing.T, s dotmesh.ClusterStore, key string) bool {
	t.Helper()
	_, err := s.Get(testCtx(t), key)
	if err != nil && !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return err == nil
}

var leaseTests = []storeTest{
	{"Revoke", func(t *testing.T, s dotmesh.ClusterStore) {
		id := grant(t, s, time.Minute)
		rev := putLeased(t, s, "l/a", "A", id)
		putLeased(t, s, "l/b", "B", id)
		put(t, s, "l/c", "C")
		if kv := get(t, s, "l/a"); kv.Lease != id || kv.Revision != rev {
			t.Errorf("leased key has lease %d revision %d, want lease %d revision %d", kv.Lease, kv.Revision, id, rev)
		}
		if kv := get(t, s, "l/c"); kv.Lease != 0 {
			t.Errorf("key put without lease has lease %d", kv.Lease)
		}
		ch := watch(t, s, "l/")
		if err := s.Revoke(testCtx(t), id); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		assertMissing(t, s, "l/a")
		assertMissing(t, s, "l/b")
		assertValue(t, s, "l/c", "C", 0)
		evs := []dotmesh.Event{nextEvent(t, ch), nextEvent(t, ch)}
		keys := []string{evs[0].KV.Key, evs[1].KV.Key}
		slices.Sort(keys)
		if evs[0].Type != dotmesh.EventDelete || evs[1].Type != dotmesh.EventDelete || !slices.Equal(keys, []string{"l/a", "l/b"}) {
			t.Errorf("events after Revoke:%s\nwant deletes of l/a and l/b", describe(evs))
		}
		if evs[0].KV.Revision <= rev {
			t.Errorf("delete event revision %d not above the leased put's %d", evs[0].KV.Revision, rev)
		}
		assertIs(t, "second Revoke", s.Revoke(testCtx(t), id), dotmesh.ErrNotFound)
		assertIs(t, "KeepAlive after Revoke", s.KeepAlive(testCtx(t), id), dotmesh.ErrNotFound)
	}},
	{"UnknownLease", func(t *testing.T, s dotmesh.ClusterStore) {
		const bogus = dotmesh.LeaseID(0x5eed1234)
		assertIs(t, "KeepAlive of a lease never granted", s.KeepAlive(testCtx(t), bogus), dotmesh.ErrNotFound)
		assertIs(t, "Revoke of a lease never granted", s.Revoke(testCtx(t), bogus), dotmesh.ErrNotFound)
		_, err := s.Txn(testCtx(t), nil, []dotmesh.Op{
			dotmesh.PutOp("u/plain", []byte("x")),
			{Key: "u/leased", Value: []byte("y"), Lease: bogus},
		})
		assertIs(t, "Txn with a lease never granted", err, dotmesh.ErrNotFound)
		assertMissing(t, s, "u/plain")
		assertMissing(t, s, "u/leased")
	}},
	{"DistinctIDs", func(t *testing.T, s dotmesh.ClusterStore) {
		a, b := grant(t, s, time.Minute), grant(t, s, time.Minute)
		if a == b {
			t.Errorf("two Grants returned the same lease id %d", a)
		}
		putLeased(t, s, "l/a", "A", a)
		putLeased(t, s, "l/b", "B", b)
		if err := s.Revoke(testCtx(t), a); err != nil {
			t.Fatal(err)
		}
		assertMissing(t, s, "l/a")
		assertValue(t, s, "l/b", "B", 0) // another lease's keys stay
	}},
	{"PutDetachesLease", func(t *testing.T, s dotmesh.ClusterStore) {
		id := grant(t, s, time.Minute)
		putLeased(t, s, "l/k", "leased", id)
		rev := put(t, s, "l/k", "plain")
		if kv := get(t, s, "l/k"); kv.Lease != 0 {
			t.Errorf("after a Put without lease the key still has lease %d", kv.Lease)
		}
		if err := s.Revoke(testCtx(t), id); err != nil {
			t.Fatal(err)
		}
		assertValue(t, s, "l/k", "plain", rev)
	}},
	{"Expires", func(t *testing.T, s dotmesh.ClusterStore) {
		ch := watch(t, s, "l/")
		start := time.Now()
		id := grant(t, s, LeaseTTL)
		rev := putLeased(t, s, "l/x", "x", id)
		put(t, s, "l/plain", "stays")
		time.Sleep(LeaseTTL / 4)
		if !exists(t, s, "l/x") {
			t.Fatalf("leased key gone after %v, long before its TTL %v", time.Since(start), LeaseTTL)
		}
		if !eventually(LeaseTTL+ExpiryDeadline, func() bool { return !exists(t, s, "l/x") }) {
			t.Fatalf("leased key still present %v after Grant(%v) with no KeepAlive", time.Since(start), LeaseTTL)
		}
		if elapsed := time.Since(start); elapsed < LeaseTTL*3/4 {
			t.Errorf("lease expired after %v, before its TTL %v", elapsed, LeaseTTL)
		}
		assertValue(t, s, "l/plain", "stays", 0)
		evs := []dotmesh.Event{nextEvent(t, ch), nextEvent(t, ch), nextEvent(t, ch)}
		if evs[0].KV.Key != "l/x" || evs[1].KV.Key != "l/plain" || evs[2].KV.Key != "l/x" {
			t.Fatalf("events:%s\nwant put l/x, put l/plain, delete l/x", describe(evs))
		}
		if del := evs[2]; del.Type != dotmesh.EventDelete || del.KV.Revision <= rev {
			t.Errorf("expiry event %s; want a delete at a revision above %d", describe(evs[2:]), rev)
		}
		assertIs(t, "KeepAlive of an expired lease", s.KeepAlive(testCtx(t), id), dotmesh.ErrNotFound)
		_, err := s.Txn(testCtx(t), nil, []dotmesh.Op{{Key: "l/again", Value: []byte("y"), Lease: id}})
		assertIs(t, "Txn with an expired lease", err, dotmesh.ErrNotFound)
		assertMissing(t, s, "l/again")
	}},
	{"KeepAlive", func(t *testing.T, s dotmesh.ClusterStore) {
		// A control lease without KeepAlive shows when expiry has happened,
		// so the kept lease is proved to outlive it.
		kept, control := grant(t, s, LeaseTTL), grant(t, s, LeaseTTL)
		putLeased(t, s, "l/kept", "k", kept)
		putLeased(t, s, "l/control", "c", control)
		keepAlive := func() {
			if err := s.KeepAlive(testCtx(t), kept); err != nil {
				t.Fatalf("KeepAlive of a live lease: %v", err)
			}
		}
		if !eventually(LeaseTTL+ExpiryDeadline, func() bool {
			keepAlive()
			return !exists(t, s, "l/control")
		}) {
			t.Fatal("control lease never expired")
		}
		// Keep it alive for more than another TTL.
		for end := time.Now().Add(LeaseTTL * 3 / 2); time.Now().Before(end); time.Sleep(LeaseTTL / 8) {
			keepAlive()
			if !exists(t, s, "l/kept") {
				t.Fatal("key of a lease kept alive disappeared")
			}
		}
		// Without KeepAlive it expires too.
		if !eventually(LeaseTTL+ExpiryDeadline, func() bool { return !exists(t, s, "l/kept") }) {
			t.Fatal("kept lease never expired after KeepAlive stopped")
		}
		assertIs(t, "KeepAlive after expiry", s.KeepAlive(testCtx(t), kept), dotmesh.ErrNotFound)
	}},
}
