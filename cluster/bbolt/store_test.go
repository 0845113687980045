package bboltstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/cluster/storetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) dotmesh.ClusterStore {
		s, err := bboltstore.Open(filepath.Join(t.TempDir(), "cluster.db"), bboltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsDataAndRevision(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cluster.db")
	s, err := bboltstore.Open(path, bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := s.Put(ctx, "dots/a", []byte("A"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Grant(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Txn(ctx, nil, []dotmesh.Op{{Key: "leased", Value: []byte("L"), Lease: id}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = bboltstore.Open(path, bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kv, err := s.Get(ctx, "dots/a")
	if err != nil || string(kv.Value) != "A" || kv.Revision != r1 {
		t.Fatalf("after reopen Get = %+v, %v; want A at revision %d", kv, err, r1)
	}
	r3, err := s.Put(ctx, "dots/b", []byte("B"))
	if err != nil {
		t.Fatal(err)
	}
	if r3 <= r2 {
		t.Errorf("revision after reopen %d, not above %d from before", r3, r2)
	}
	// Leases survive the restart too.
	id2, err := s.Grant(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if id2 == id {
		t.Errorf("lease id %d reused after reopen", id)
	}
	if err := s.KeepAlive(ctx, id); err != nil {
		t.Errorf("KeepAlive of a lease granted before reopen: %v", err)
	}
	if err := s.Revoke(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "leased"); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Errorf("leased key after Revoke across reopen: %v", err)
	}
}

func TestLeaseExpiresWhileClosed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cluster.db")
	s, err := bboltstore.Open(path, bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Grant(ctx, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(ctx, nil, []dotmesh.Op{{Key: "master/x", Value: []byte("node1"), Lease: id}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	time.Sleep(300 * time.Millisecond)
	s, err = bboltstore.Open(path, bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Get(ctx, "master/x")
		if errors.Is(err, dotmesh.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key of a lease that expired while the store was closed still there: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cluster.db")
	s, err := bboltstore.Open(path, bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	s2, err := bboltstore.Open(path, bboltstore.Options{Timeout: 200 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a file in use succeeded")
	}
	if !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Errorf("error %v does not wrap ErrUnavailable", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "another dm serve") || !strings.Contains(msg, path) {
		t.Errorf("error %q should name the file and say another dm serve probably uses it", msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v to fail", d)
	}
}

func TestClosedStore(t *testing.T) {
	ctx := context.Background()
	s, err := bboltstore.Open(filepath.Join(t.TempDir(), "cluster.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-ch; ok {
		t.Error("watch channel delivered an event after Close")
	}
	if _, err := s.Put(ctx, "k", nil); !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Errorf("Put after Close: %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Errorf("Get after Close: %v, want ErrUnavailable", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSlowWatcherIsClosed(t *testing.T) {
	ctx := context.Background()
	s, err := bboltstore.Open(filepath.Join(t.TempDir(), "cluster.db"), bboltstore.Options{WatchBuffer: 4, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	slow, err := s.Watch(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Watch(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	// Writers go on although slow never reads; fast, reading in step,
	// sees every event.
	for i := range 10 {
		done := make(chan error, 1)
		go func() {
			_, err := s.Put(ctx, "k", []byte{byte(i)})
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("writer blocked by a watcher that does not read")
		}
		select {
		case ev, ok := <-fast:
			if !ok || ev.KV.Value[0] != byte(i) {
				t.Fatalf("reading watcher: event %d: %+v, open %v", i, ev, ok)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("reading watcher got no event %d", i)
		}
	}
	n := 0
	for range slow {
		n++
	}
	if n != 4 {
		t.Errorf("slow watcher got %d events before its channel closed, want its buffer of 4", n)
	}
}

func TestDuplicateKeysInTxnRejected(t *testing.T) {
	s, err := bboltstore.Open(filepath.Join(t.TempDir(), "cluster.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Txn(context.Background(), nil, []dotmesh.Op{dotmesh.PutOp("k", []byte("1")), dotmesh.DeleteOp("k")})
	if !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("txn with two ops on one key: %v, want ErrInvalidArgument", err)
	}
	if _, err := s.Put(context.Background(), "", []byte("x")); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("Put with an empty key: %v, want ErrInvalidArgument", err)
	}
}

// Scan sees what List sees, in key order, and stops at fn's error.
func TestScanMatchesList(t *testing.T) {
	ctx := context.Background()
	s, err := bboltstore.Open(filepath.Join(t.TempDir(), "cluster.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"commits/d1/b", "commits/d1/a", "commits/d2/c", "dots/d1", "commitsx"} {
		if _, err := s.Put(ctx, k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	want, err := s.List(ctx, "commits/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.Scan(ctx, "commits/", func(key, value []byte) error {
		got = append(got, string(key)+"="+string(value))
		return nil
	})
	if err != nil || len(got) != len(want) {
		t.Fatalf("Scan = %v, %v; List = %v", got, err, want)
	}
	for i, kv := range want {
		if got[i] != kv.Key+"="+string(kv.Value) {
			t.Errorf("Scan[%d] = %s, List has %s=%s", i, got[i], kv.Key, kv.Value)
		}
	}
	stop := errors.New("stop")
	n := 0
	err = s.Scan(ctx, "", func(key, value []byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Scan with fn failing: %v after %d calls, want stop after 1", err, n)
	}
	s.Close()
	if err := s.Scan(ctx, "", func(key, value []byte) error { return nil }); err == nil {
		t.Error("Scan of a closed store succeeded")
	}
}

// WriteStamp counts committed writes by first key segment; a failed
// transaction counts nothing.
func TestWriteStamp(t *testing.T) {
	ctx := context.Background()
	s, err := bboltstore.Open(filepath.Join(t.TempDir(), "cluster.db"), bboltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var _ dotmesh.WriteStamper = s
	step := func(want uint64, prefixes ...string) {
		t.Helper()
		if got := s.WriteStamp(prefixes...); got != want {
			t.Fatalf("WriteStamp(%v) = %d, want %d", prefixes, got, want)
		}
	}
	step(0, "users/")
	if _, err := s.Put(ctx, "users/a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "commits/x/y", []byte("1")); err != nil {
		t.Fatal(err)
	}
	step(1, "users/")
	step(1, "keys/", "users/")
	step(1, "commits/")
	if _, err := s.Txn(ctx, []dotmesh.Condition{dotmesh.IfAbsent("users/a")}, []dotmesh.Op{dotmesh.PutOp("users/b", nil)}); !errors.Is(err, dotmesh.ErrConflict) {
		t.Fatalf("txn: %v", err)
	}
	step(1, "users/")
	if err := s.Delete(ctx, "users/a"); err != nil {
		t.Fatal(err)
	}
	step(2, "users/")
}
