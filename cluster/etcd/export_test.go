package etcdstore

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// CompactBeforeWatchStarts makes the next Watch on s lose its start
// revision: between reading it and starting the etcd watch, two writes
// land and etcd is compacted past the first, as can happen to a watch
// that resumes after a reconnect.
func CompactBeforeWatchStarts(t *testing.T, s *Store) {
	s.watchStarted = func() {
		s.watchStarted = nil // only once
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var rev int64
		for _, k := range []string{"w/between1", "w/between2"} {
			resp, err := s.c.Put(ctx, s.prefix+k, "x")
			if err != nil {
				t.Errorf("put %s: %v", k, err)
				return
			}
			rev = resp.Header.Revision
		}
		if _, err := s.c.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
			t.Errorf("compact at %d: %v", rev, err)
		}
	}
}

// RangeReads is how many times s listed a prefix from etcd.
func RangeReads(s *Store) int64 { return s.ranges.Load() }

// Prefix is s's key prefix.
func Prefix(s *Store) string { return s.prefix }
