package repo

import (
	"context"
	"errors"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket"
)

// TestOpenPrefetchesIndex: Open of an encrypted repository reads the
// index objects while it derives the key, and the first index read
// takes them from there (the bucket's index objects, deleted after
// Open, are still known); ReloadIndex drops what was read ahead. A wrong
// password still fails as ErrWrongPassword.
func TestOpenPrefetchesIndex(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		w := initRepo(t, st, false)
		var ids []ID
		for range 3 {
			id, _, err := w.PutBlob(ctx, randomData(10<<10))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		flush(t, w)
		if _, err := Open(ctx, st, []byte("not the password"), Options{}); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("a wrong password: %v", err)
		}
		r := openRepo(t, st, "secret one")
		if r.prefetch == nil {
			t.Fatal("Open read no index ahead")
		}
		<-r.prefetch.done
		names := objectNames(t, st, indexDir)
		if len(names) == 0 {
			t.Fatal("no index objects")
		}
		for _, n := range names {
			if err := st.Delete(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		has, err := r.HasBlobs(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, ok := range has {
			if !ok {
				t.Fatalf("blob %d unknown: the index read ahead was not used", i)
			}
		}
		r.ReloadIndex()
		if has, err = r.HasBlobs(ctx, ids); err != nil || has[0] {
			t.Fatalf("after ReloadIndex, with the index objects gone: %v, %v", has, err)
		}
	})
}
