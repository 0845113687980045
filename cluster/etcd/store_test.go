package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	etcdstore "github.com/dotmesh-io/dotmesh/cluster/etcd"
	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
	"github.com/dotmesh-io/dotmesh/cluster/storetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var prefixSeq atomic.Int64

// opener returns a storetest open function that gives each call its own
// prefix in the shared etcd, so each sees a fresh empty store.
func opener(endpoints []string) func(t *testing.T) dotmesh.ClusterStore {
	return func(t *testing.T) dotmesh.ClusterStore {
		return open(t, etcdstore.Options{Endpoints: endpoints})
	}
}

func open(t *testing.T, opts etcdstore.Options) *etcdstore.Store {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("/test/%d/", prefixSeq.Add(1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := etcdstore.Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	storetest.Run(t, opener(c.Endpoints()))
}

func TestConformanceThreeMembers(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 3)
	storetest.Run(t, opener(c.Endpoints()))
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestUnavailable stops etcd: every call fails fast with ErrUnavailable
// naming etcd, and the same Store works again once etcd is back.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	const reqTimeout = 2 * time.Second
	s := open(t, etcdstore.Options{Endpoints: c.Endpoints(), RequestTimeout: reqTimeout})
	defer s.Close()
	ctx := ctxTimeout(t, 2*time.Minute)
	if _, err := s.Put(ctx, "k", []byte("before")); err != nil {
		t.Fatal(err)
	}
	lease, err := s.Grant(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	ch, err := s.Watch(wctx, "")
	if err != nil {
		t.Fatal(err)
	}

	c.Stop(0)
	calls := []struct {
		name string
		fn   func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"List", func() error { _, err := s.List(ctx, ""); return err }},
		{"Put", func() error { _, err := s.Put(ctx, "k", []byte("x")); return err }},
		{"Delete", func() error { return s.Delete(ctx, "k") }},
		{"Txn", func() error {
			_, err := s.Txn(ctx, []dotmesh.Condition{dotmesh.IfAbsent("n")}, []dotmesh.Op{dotmesh.PutOp("n", nil)})
			return err
		}},
		{"Watch", func() error { _, err := s.Watch(ctx, ""); return err }},
		{"Grant", func() error { _, err := s.Grant(ctx, time.Minute); return err }},
		{"KeepAlive", func() error { return s.KeepAlive(ctx, lease) }},
		{"Revoke", func() error { return s.Revoke(ctx, lease) }},
	}
	var wg sync.WaitGroup
	for _, call := range calls {
		wg.Go(func() {
			start := time.Now()
			err := call.fn()
			took := time.Since(start)
			if !errors.Is(err, dotmesh.ErrUnavailable) {
				t.Errorf("%s with etcd stopped: %v; want ErrUnavailable", call.name, err)
				return
			}
			if msg := err.Error(); !strings.Contains(msg, "etcd") || !strings.Contains(msg, c.Endpoint(0)) {
				t.Errorf("%s: error %q does not name etcd and its endpoint", call.name, msg)
			}
			if took > reqTimeout+3*time.Second {
				t.Errorf("%s took %v to fail; want about RequestTimeout %v", call.name, took, reqTimeout)
			}
		})
	}
	wg.Wait()
	// Open fails fast too.
	start := time.Now()
	_, err = etcdstore.Open(ctx, etcdstore.Options{Endpoints: c.Endpoints(), RequestTimeout: reqTimeout})
	if !errors.Is(err, dotmesh.ErrUnavailable) || time.Since(start) > reqTimeout+3*time.Second {
		t.Errorf("Open with etcd stopped: %v after %v; want ErrUnavailable within about %v", err, time.Since(start), reqTimeout)
	}
	t.Logf("example: %v", err)

	c.Restart(0)
	// The client reconnects by itself (with backoff).
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.Get(ctx, "k")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get still failing 30s after etcd restarted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rev, err := s.Put(ctx, "k", []byte("after"))
	if err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	if err := s.KeepAlive(ctx, lease); err != nil {
		t.Errorf("KeepAlive after restart of a 1-minute lease: %v", err)
	}
	// The watch from before either resumed (no change lost) or was closed
	// (lost, which the contract allows); never silently open and stale.
	select {
	case ev, ok := <-ch:
		if ok && (ev.KV.Key != "k" || ev.KV.Revision != rev || string(ev.KV.Value) != "after") {
			t.Errorf("watch from before the restart delivered %+v, want the put of k at %d", ev, rev)
		}
		t.Logf("watch across restart: open=%v", ok)
	case <-time.After(15 * time.Second):
		t.Error("watch from before the restart neither delivered the new put nor closed")
	}
}

// TestMemberKilled SIGKILLs one member of three: reads and writes go on
// via the other two. A dead follower costs at most a request that was on a
// connection to it; a dead leader also costs the election, during which a
// request may time out.
func TestMemberKilled(t *testing.T) {
	t.Parallel()
	t.Run("Follower", func(t *testing.T) {
		t.Parallel()
		testMemberKilled(t, false)
	})
	t.Run("Leader", func(t *testing.T) {
		t.Parallel()
		testMemberKilled(t, true)
	})
}

func testMemberKilled(t *testing.T, leader bool) {
	c := etcdtest.Start(t, 3)
	s := open(t, etcdstore.Options{Endpoints: c.Endpoints(), RequestTimeout: 3 * time.Second})
	defer s.Close()
	ctx := ctxTimeout(t, 2*time.Minute)
	ch, err := s.Watch(ctx, "k/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k/0", []byte("0")); err != nil {
		t.Fatal(err)
	}
	victim := c.Leader()
	if !leader {
		victim = (victim + 1) % 3
	}
	c.Kill(victim)
	t.Logf("killed m%d (leader: %v)", victim, leader)

	start := time.Now()
	for {
		_, err := s.Put(ctx, "k/1", []byte("1"))
		if err == nil {
			break
		}
		// Whichever member died, a request on a connection to it is cut
		// off (EOF: it may have been applied, so the client does not
		// retry it) and the next goes to another member; a dead leader
		// also takes an election.
		if !errors.Is(err, dotmesh.ErrUnavailable) || time.Since(start) > 15*time.Second {
			t.Fatalf("Put after m%d was killed: %v", victim, err)
		}
	}
	t.Logf("first write succeeded %v after the kill", time.Since(start))
	for i := 2; i < 50; i++ {
		key := fmt.Sprintf("k/%d", i)
		rev, err := s.Put(ctx, key, []byte(key))
		if err != nil {
			t.Fatalf("Put #%d with one member dead: %v", i, err)
		}
		kv, err := s.Get(ctx, key)
		if err != nil || kv.Revision != rev {
			t.Fatalf("Get #%d with one member dead: %+v, %v", i, kv, err)
		}
	}
	kvs, err := s.List(ctx, "k/")
	if err != nil || len(kvs) != 50 {
		t.Fatalf("List with one member dead: %d keys, %v; want 50", len(kvs), err)
	}
	// The watch either saw every put or was closed as lost.
	seen := map[string]bool{}
	for len(seen) < 50 {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Logf("watch closed after m%d died (lost after %d events)", victim, len(seen))
				return
			}
			seen[ev.KV.Key] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("watch stalled after %d of 50 events", len(seen))
		}
	}
	t.Logf("watch saw all 50 puts")
}

// TestWatchLostOnCompaction: an etcd watch that can not resume because its
// revision was compacted closes the channel while ctx is still live.
func TestWatchLostOnCompaction(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	s := open(t, etcdstore.Options{Endpoints: c.Endpoints()})
	defer s.Close()
	ctx := ctxTimeout(t, time.Minute)
	etcdstore.CompactBeforeWatchStarts(t, s)
	if _, err := s.Put(ctx, "w/before", []byte("x")); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, "w/")
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					t.Fatal("context ended, not the watch")
				}
				// Lost, as it should be; a new Watch works.
				ch2, err := s.Watch(ctx, "w/")
				if err != nil {
					t.Fatal(err)
				}
				rev, err := s.Put(ctx, "w/again", []byte("y"))
				if err != nil {
					t.Fatal(err)
				}
				if ev := <-ch2; ev.KV.Key != "w/again" || ev.KV.Revision != rev {
					t.Errorf("new watch delivered %+v, want w/again at %d", ev, rev)
				}
				return
			}
			t.Logf("event before the close: %+v", ev)
		case <-time.After(10 * time.Second):
			t.Fatal("watch starting below the compacted revision still open after 10s")
		}
	}
}

// TestScale lists a prefix of 10,000 keys (more than one List page).
func TestScale(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	s := open(t, etcdstore.Options{Endpoints: c.Endpoints()})
	defer s.Close()
	ctx := ctxTimeout(t, time.Minute)
	const n, batch = 10000, 100 // etcd --max-txn-ops is 128
	start := time.Now()
	for b := 0; b < n; b += batch {
		ops := make([]dotmesh.Op, 0, batch)
		for i := b; i < b+batch; i++ {
			key := fmt.Sprintf("big/%05d", i)
			ops = append(ops, dotmesh.PutOp(key, []byte(key)))
		}
		if _, err := s.Txn(ctx, nil, ops); err != nil {
			t.Fatalf("Txn batch at %d: %v", b, err)
		}
	}
	if _, err := s.Put(ctx, "bigger", []byte("not under big/")); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d keys in %v", n, time.Since(start))
	start = time.Now()
	kvs, err := s.List(ctx, "big/")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("listed %d keys in %v", len(kvs), time.Since(start))
	if len(kvs) != n {
		t.Fatalf("List returned %d keys, want %d", len(kvs), n)
	}
	for i, kv := range kvs {
		want := fmt.Sprintf("big/%05d", i)
		if kv.Key != want || string(kv.Value) != want {
			t.Fatalf("List[%d] = %q=%q, want %q", i, kv.Key, kv.Value, want)
		}
	}
	// Too many ops in one txn is the caller's error, named as etcd's limit.
	ops := make([]dotmesh.Op, 200)
	for i := range ops {
		ops[i] = dotmesh.PutOp(fmt.Sprintf("many/%d", i), nil)
	}
	if _, err := s.Txn(ctx, nil, ops); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("Txn of 200 ops: %v; want ErrInvalidArgument", err)
	}
}

// TestPrefixIsolation: two stores with different prefixes on one etcd do
// not see each other's keys, and keys come back without the prefix.
func TestPrefixIsolation(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	a := open(t, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: "/iso/a"})
	defer a.Close()
	ab := open(t, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: "/iso/ab/"})
	defer ab.Close()
	ctx := ctxTimeout(t, time.Minute)
	if _, err := a.Put(ctx, "k", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := ab.Put(ctx, "k", []byte("ab")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    *etcdstore.Store
		want string
	}{{a, "a"}, {ab, "ab"}} {
		kvs, err := tc.s.List(ctx, "")
		if err != nil || len(kvs) != 1 || kvs[0].Key != "k" || string(kvs[0].Value) != tc.want {
			t.Errorf("List = %+v, %v; want only k=%s", kvs, err, tc.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	s := open(t, etcdstore.Options{Endpoints: c.Endpoints()})
	defer s.Close()
	ctx := ctxTimeout(t, time.Minute)
	_, err := s.Put(ctx, "", []byte("x"))
	if !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("Put of an empty key: %v", err)
	}
	_, err = s.Txn(ctx, nil, []dotmesh.Op{dotmesh.PutOp("a", nil), dotmesh.DeleteOp("a")})
	if !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Txn writing one key twice: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Errorf("Get after Close: %v; want ErrUnavailable", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := ctxTimeout(t, time.Minute)
	if _, err := etcdstore.Open(ctx, etcdstore.Options{}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("Open without endpoints: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "nope.pem")
	for _, tc := range []struct {
		opts etcdstore.Options
		flag string
	}{
		{etcdstore.Options{CAFile: missing}, "--etcd-ca"},
		{etcdstore.Options{CertFile: missing, KeyFile: missing}, "--etcd-cert"},
		{etcdstore.Options{CertFile: missing}, "--etcd-key"},
	} {
		tc.opts.Endpoints = []string{"https://127.0.0.1:1"}
		_, err := etcdstore.Open(ctx, tc.opts)
		if !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.flag) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open with %+v: %v; want a one-line ErrInvalidArgument naming %s", tc.opts, err, tc.flag)
		}
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: []string{"https://127.0.0.1:1"}, CAFile: notPEM}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("Open with a CA file that is not PEM: %v", err)
	}
	// Nothing listens: fail fast with ErrUnavailable naming the endpoint.
	start := time.Now()
	_, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: []string{"http://127.0.0.1:1"}, RequestTimeout: time.Second})
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), "http://127.0.0.1:1") ||
		!strings.Contains(err.Error(), "connection refused") || time.Since(start) > 5*time.Second {
		t.Errorf("Open with nothing listening: %v after %v", err, time.Since(start))
	}
}

// TestTLS talks to an etcd that requires client certificates.
func TestTLS(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartTLS(t, 1)
	files := c.TLS()
	s := open(t, etcdstore.Options{Endpoints: c.Endpoints(), CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey})
	defer s.Close()
	ctx := ctxTimeout(t, time.Minute)
	rev, err := s.Put(ctx, "secure", []byte("yes"))
	if err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(ctx, "secure"); err != nil || kv.Revision != rev {
		t.Fatalf("Get over TLS: %+v, %v", kv, err)
	}
	// Without a client certificate etcd refuses the connection.
	_, err = etcdstore.Open(ctx, etcdstore.Options{Endpoints: c.Endpoints(), CAFile: files.CA, RequestTimeout: time.Second})
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Open without a client certificate against --client-cert-auth: %v; want ErrUnavailable saying why", err)
	}
	t.Logf("without a client certificate: %v", err)
}
