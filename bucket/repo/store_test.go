package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket"
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
		"BadArguments": TestBadArguments,
	} {
		t.Run(name, test)
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
