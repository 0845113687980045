package etcdstore_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	etcdstore "github.com/dotmesh-io/dotmesh/cluster/etcd"
	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// ListCached answers as List does: at once after every write of its own
// Store (puts, deletes, transactions, a delete of a missing key), after
// another Store's writes once its watch delivered them, and from memory
// (no ranged read) while nothing changes; keys of other prefixes do not
// show.
func TestListCached(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	a := open(t, etcdstore.Options{Endpoints: c.Endpoints()})
	defer a.Close()
	b := open(t, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: etcdstore.Prefix(a)})
	defer b.Close()
	ctx := ctxTimeout(t, time.Minute)
	same := func(what string) bool {
		t.Helper()
		got, err := a.ListCached(ctx, "dots/")
		if err != nil {
			t.Fatalf("%s: ListCached: %v", what, err)
		}
		want, err := a.List(ctx, "dots/")
		if err != nil {
			t.Fatalf("%s: List: %v", what, err)
		}
		if len(got) == 0 && len(want) == 0 {
			return true
		}
		return reflect.DeepEqual(got, want)
	}
	mustSame := func(what string) {
		t.Helper()
		if !same(what) {
			got, _ := a.ListCached(ctx, "dots/")
			want, _ := a.List(ctx, "dots/")
			t.Fatalf("%s: ListCached %+v, List %+v", what, got, want)
		}
	}
	mustSame("empty")
	for i := 0; i < 30; i++ {
		k := fmt.Sprintf("dots/%03d", (i*7)%20)
		switch i % 5 {
		case 0, 1:
			if _, err := a.Put(ctx, k, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := a.Delete(ctx, k); err != nil { // present or missing
				t.Fatal(err)
			}
		case 3:
			if _, err := a.Txn(ctx, nil, []dotmesh.Op{dotmesh.PutOp(k, []byte("t")), dotmesh.DeleteOp("dots/missing"), dotmesh.PutOp("other/x", []byte("o"))}); err != nil {
				t.Fatal(err)
			}
		case 4:
			if _, err := a.Txn(ctx, nil, []dotmesh.Op{dotmesh.DeleteOp(k)}); err != nil {
				t.Fatal(err)
			}
		}
		mustSame(fmt.Sprintf("write %d (%s)", i, k))
	}
	if _, err := a.Put(ctx, "dotsx", []byte("not under dots/")); err != nil {
		t.Fatal(err)
	}
	mustSame("a key beside the prefix")
	// Unchanged: from memory.
	before := etcdstore.RangeReads(a)
	for i := 0; i < 5; i++ {
		mustSame("unchanged")
	}
	if n := etcdstore.RangeReads(a) - before; n != 5 { // the Lists of mustSame only
		t.Fatalf("5 unchanged listings read etcd %d times, want 0", n-5)
	}
	// Another client's writes show once the watch delivers them.
	if _, err := b.Put(ctx, "dots/from-b", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "dots/000"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !same("another client's writes") {
		if time.Now().After(deadline) {
			mustSame("another client's writes, 10s on")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ListKeys gives List's keys, in order, and only those under the prefix.
func TestListKeys(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	s := open(t, etcdstore.Options{Endpoints: c.Endpoints()})
	defer s.Close()
	ctx := ctxTimeout(t, time.Minute)
	for _, k := range []string{"commits/b/2", "commits/a/1", "commits/b/1", "commitsx", "other/1"} {
		if _, err := s.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := s.ListKeys(ctx, "commits/")
	if err != nil || !reflect.DeepEqual(keys, []string{"commits/a/1", "commits/b/1", "commits/b/2"}) {
		t.Fatalf("ListKeys: %q, %v", keys, err)
	}
	if keys, err := s.ListKeys(ctx, "none/"); err != nil || len(keys) != 0 {
		t.Fatalf("ListKeys of an empty prefix: %q, %v", keys, err)
	}
}
