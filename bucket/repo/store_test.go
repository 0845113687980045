package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/s3"
	"github.com/dotmesh-io/dotmesh/bucket/s3test"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// noCreate is a store without conditional writes, as some S3 servers.
type noCreate struct{ bucket.Store }

func (noCreate) Create(context.Context, string, io.Reader, int64) error {
	return fmt.Errorf("%w: conditional create", dotmesh.ErrNotSupported)
}

// seaweed, while TestSeaweedFS runs, is the real S3 server the tests use
// instead of a local directory.
var seaweed *s3test.Server

// forEachStore runs f against a fresh, empty store: a local directory
// (bucket's local kind), or a prefix of the SeaweedFS bucket when run
// from TestSeaweedFS.
func forEachStore(t *testing.T, f func(t *testing.T, st bucket.Store)) {
	t.Helper()
	if seaweed != nil {
		prefix := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '/' || r == '-' {
				return r
			}
			return '-'
		}, t.Name()) + "-" + newKeyID()[:8]
		f(t, seaweed.Open(t, prefix))
		return
	}
	st, err := bucket.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f(t, st)
}

// TestSeaweedFS runs the repository tests against a real S3 server.
func TestSeaweedFS(t *testing.T) {
	seaweed = s3test.Start(t)
	defer func() { seaweed = nil }()
	for name, test := range map[string]func(*testing.T){
		"RoundTrip": TestRoundTrip, "NamesHideContent": TestNamesHideContent,
		"PlainRepository": TestPlainRepository, "WrongPassword": TestWrongPassword,
		"Keys": TestKeys, "Tamper": TestTamper, "ConfigTamper": TestConfigTamper,
		"Refs": TestRefs, "RefRace": TestRefRace, "Locks": TestLocks,
		"LockRace": TestLockRace, "LockReloadsIndex": TestLockReloadsIndex,
		"BadArguments": TestBadArguments, "RefSwapLostAnswer": TestRefSwapLostAnswer,
		"Packs": TestPacks, "PackResume": TestPackResume, "LooseBlobs": TestLooseBlobs,
		"CheckPacks": TestCheckPacks,
	} {
		t.Run(name, test)
	}
	t.Run("ReadOnlyCredentials", testReadOnly)
	t.Run("ServerKilled", testServerKilled)
}

// testReadOnly: credentials that may only read open and read the
// repository; every write is refused as such and changes nothing.
func testReadOnly(t *testing.T) {
	ctx := context.Background()
	prefix := "readonly-" + newKeyID()[:8]
	w := initRepo(t, seaweed.Open(t, prefix), false)
	id, _, err := w.PutBlob(ctx, []byte("chunk"))
	if err != nil {
		t.Fatal(err)
	}
	flush(t, w)
	if _, err := w.SetRef(ctx, "dot/master", 0, []byte("head")); err != nil {
		t.Fatal(err)
	}
	ro, err := s3.Open(ctx, s3test.BucketName, prefix, seaweed.ReadOnlyConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	before := objectNames(t, ro, "")
	r := openRepo(t, ro, "secret one")
	if b, err := r.GetBlob(ctx, id); err != nil || string(b) != "chunk" {
		t.Fatalf("GetBlob with read-only credentials: %q, %v", b, err)
	}
	if _, _, err := r.PutBlob(ctx, []byte("new chunk")); err != nil {
		t.Fatalf("PutBlob with read-only credentials (packed, not yet stored): %v", err)
	}
	if err := r.Flush(ctx); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("PutBlob with read-only credentials: %v", err)
	}
	if _, err := r.SetRef(ctx, "dot/master", 1, []byte("other")); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("SetRef with read-only credentials: %v", err)
	}
	if _, err := r.Lock(ctx, false); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("Lock with read-only credentials: %v", err)
	}
	if _, err := r.AddKey(ctx, []byte("pw"), cheapKDF); !errors.Is(err, dotmesh.ErrPermissionDenied) {
		t.Fatalf("AddKey with read-only credentials: %v", err)
	}
	if after := objectNames(t, ro, ""); !slices.Equal(before, after) {
		t.Fatalf("refused writes changed the bucket: %v, then %v", before, after)
	}
}

// testServerKilled: the S3 server (its gateway) killed as a crash while
// writers run loses nothing already stored; after a restart the
// repository opens, checks clean, and the writes go on.
func testServerKilled(t *testing.T) {
	ctx := context.Background()
	prefix := "killed-" + newKeyID()[:8]
	r := initRepo(t, seaweed.Open(t, prefix), false)
	var ids []ID
	for i := range 20 {
		id, _, err := r.PutBlob(ctx, fmt.Appendf(nil, "chunk %d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	flush(t, r)
	stop := make(chan struct{})
	done := make(chan error)
	go func() { // a writer that keeps going while the server dies
		var failed error
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- failed
				return
			default:
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, _, err := r.PutBlob(cctx, randomData(256<<10))
			if err == nil {
				err = r.Flush(cctx)
			}
			if err != nil && failed == nil {
				failed = err
			}
			cancel()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	seaweed.Kill()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	if err := <-done; err == nil {
		t.Error("writes to a killed S3 server did not fail")
	} else if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
	seaweed.Restart(t)
	r2 := openRepo(t, seaweed.Open(t, prefix), "secret one")
	for _, id := range ids {
		if _, err := r2.GetBlob(ctx, id); err != nil {
			t.Fatalf("blob stored before the kill: %v", err)
		}
	}
	res, err := r2.Check(ctx, CheckOptions{ReadData: true})
	if err != nil || res.Err() != nil {
		t.Fatalf("Check after a restart: %v, %v", err, res.Err())
	}
	if _, _, err := r2.PutBlob(ctx, []byte("after restart")); err != nil {
		t.Fatal(err)
	}
}

// raw reads and writes objects behind the repository's back.
func rawGet(t testing.TB, st bucket.Store, name string) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rawPut(t testing.TB, st bucket.Store, name string, b []byte) {
	t.Helper()
	if err := st.Put(context.Background(), name, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// cheapKDF keeps tests fast; the format is the same.
var cheapKDF = KDFParams{Name: KDFArgon2id, Time: 1, Memory: 1024, Threads: 1}
