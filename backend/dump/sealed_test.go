package dump

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/seal"
)

// cheapKDF keeps tests fast; the format is the same.
var cheapKDF = seal.KDFParams{Name: seal.KDFArgon2id, Time: 1, Memory: 1024, Threads: 1}

func sealedOpts(t testing.TB, password string) Options {
	return Options{Logger: testLogger(t), Workers: 2, Encrypt: true, Password: []byte(password), KDF: cheapKDF}
}

// The conformance suite again, on encrypted stores.
func TestConformanceSealed(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) dotmesh.StorageBackend {
		dir := t.TempDir()
		b, err := Open(dir, sealedOpts(t, "pw"))
		if err != nil {
			t.Fatal(err)
		}
		if !b.b.Encrypted() {
			t.Fatal("Encrypt made a plain store")
		}
		t.Cleanup(func() { makeWritable(dir) })
		return b
	})
}

func TestRefsSealed(t *testing.T) {
	backendtest.RunRefs(t, func(t *testing.T, _ string) dotmesh.StorageBackend {
		dir := t.TempDir()
		b, err := Open(dir, sealedOpts(t, "pw"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { makeWritable(dir) })
		return b
	})
}

// openSealed opens an encrypted store in a new directory.
func openSealed(t *testing.T) (*Guarded, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := Open(dir, sealedOpts(t, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		makeWritable(dir)
	})
	return b, dir
}

// snapshotDir maps every file under dir to a hash of its content.
func snapshotDir(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	m := map[string][32]byte{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				os.Chmod(p, 0o600)
				if b, err = os.ReadFile(p); err != nil {
					t.Fatal(err)
				}
			}
			m[p] = sha256.Sum256(b)
		} else {
			m[p] = [32]byte{1}
		}
		return nil
	})
	return m
}

// TestSealedStoreHidesContent: after committing known content, no file
// of the data directory but the working tree holds its bytes, the
// BLAKE3 hashes of its chunks or the manifest's root, hex or raw.
func TestSealedStoreHidesContent(t *testing.T) {
	b, dir := openSealed(t)
	br := newBranch(t, b)
	small := []byte("MARKER-sealed-store-4b1d small file content\n")
	big := append(bytes.Repeat([]byte("MARKER-sealed-store-4b1d "), 1000), randomBytes(7, 3<<20)...)
	writeFile(t, filepath.Join(treeOf(t, b, br), "small.txt"), small, 0o644)
	writeFile(t, filepath.Join(treeOf(t, b, br), "big.bin"), big, 0o644)
	c, _ := commit(t, b, br)
	hashes := []cas.Hash{commitManifest(t, b, c).Root, cas.Sum(small)}
	for h := range commitObjects(t, b, c) {
		hashes = append(hashes, h)
	}
	if len(hashes) < 4 {
		t.Fatalf("only %d hashes to look for", len(hashes))
	}
	needles := [][]byte{[]byte("MARKER-sealed-store-4b1d"), big[len(big)-64:]}
	for _, h := range hashes {
		needles = append(needles, h[:], []byte(h.String()), []byte(h.String()[:24]))
	}
	tree := treeOf(t, b, br)
	b.Close()
	scanned := 0
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() && p == tree {
			return filepath.SkipDir // the working state is not sealed
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		os.Chmod(p, 0o600)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		scanned++
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s holds %x…", p, n[:min(len(n), 12)])
			}
		}
		return nil
	})
	if scanned < 4 {
		t.Fatalf("scanned only %d files", scanned)
	}
}

// TestSealedFlippedByte: a damaged sealed object is reported as corrupt,
// never returned.
func TestSealedFlippedByte(t *testing.T) {
	b, _ := openSealed(t)
	br := newBranch(t, b)
	content := randomBytes(3, 200<<10)
	writeFile(t, filepath.Join(treeOf(t, b, br), "f"), content, 0o644)
	c, _ := commit(t, b, br)
	p, off, n, err := b.b.store.Location(cas.Sum(content))
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, p, off+int64(n)/2)
	rep, err := b.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damaged) != 1 {
		t.Fatalf("verify found %d damaged objects, want 1: %+v", len(rep.Damaged), rep)
	}
	br2 := dotmesh.BranchRef{Dot: br.Dot, Branch: "copy"}
	if err := b.CreateBranch(ctx, br2, &c); !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("restoring a damaged object: %v, want ErrCorrupt", err)
	}
}

// TestSealedOpenModes: a wrong or missing password, and encryption asked
// of a plain store, are refused at once and change nothing; the right
// password restores every commit after a restart.
func TestSealedOpenModes(t *testing.T) {
	dir := t.TempDir()
	t.Cleanup(func() { makeWritable(dir) })
	b, err := Open(dir, sealedOpts(t, "right"))
	if err != nil {
		t.Fatal(err)
	}
	br := newBranch(t, b)
	content := randomBytes(5, 700<<10)
	writeFile(t, filepath.Join(treeOf(t, b, br), "f"), content, 0o644)
	c, _ := commit(t, b, br)
	b.Close()
	before := snapshotDir(t, dir)

	for name, o := range map[string]Options{
		"wrong password": {Logger: testLogger(t), Password: []byte("wrong")},
		"no password":    {Logger: testLogger(t)},
	} {
		_, err := Open(dir, o)
		if !errors.Is(err, dotmesh.ErrUnauthorized) {
			t.Fatalf("%s: %v, want ErrUnauthorized", name, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("%s: error is not one line: %q", name, err)
		}
		if after := snapshotDir(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("%s changed the data directory", name)
		}
	}

	b, err = Open(dir, Options{Logger: testLogger(t), Password: []byte("right")})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := b.Commits(ctx, br)
	if err != nil || len(cs) != 1 || cs[0] != c.ID {
		t.Fatalf("commits after reopening: %v, %v", cs, err)
	}
	br2 := dotmesh.BranchRef{Dot: br.Dot, Branch: "again"}
	if err := b.CreateBranch(ctx, br2, &c); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(treeOf(t, b, br2), "f"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("restored content differs: %v", err)
	}
	b.Close()

	plain := t.TempDir()
	pb, err := Open(plain, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	pbr := newBranch(t, pb)
	commit(t, pb, pbr)
	pb.Close()
	before = snapshotDir(t, plain)
	if _, err := Open(plain, sealedOpts(t, "pw")); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("encrypting a plain store: %v, want ErrInvalidArgument", err)
	}
	if _, err := Open(plain, Options{Logger: testLogger(t), Password: []byte("pw")}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("a password for a plain store: %v, want ErrInvalidArgument", err)
	}
	if after := snapshotDir(t, plain); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("refusing to encrypt a plain store changed it")
	}
}

// TestSealedKeys: key slots added open the store, removed ones do not;
// the last and the one in use are kept.
func TestSealedKeys(t *testing.T) {
	b, dir := openSealed(t)
	br := newBranch(t, b)
	writeFile(t, filepath.Join(treeOf(t, b, br), "f"), []byte("data"), 0o644)
	commit(t, b, br)
	id2, err := b.b.AddKey([]byte("second"), cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := b.b.Keys()
	if err != nil || len(ks) != 2 {
		t.Fatalf("keys: %v, %v", ks, err)
	}
	var first string
	for _, k := range ks {
		if k.InUse {
			first = k.ID
		}
	}
	if first == "" || first == id2 {
		t.Fatalf("key in use: %+v", ks)
	}
	if err := b.b.RemoveKey(first, false); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("removing the key in use: %v", err)
	}
	b.Close()
	b2, err := Open(dir, Options{Logger: testLogger(t), Password: []byte("second")})
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.b.RemoveKey(first, false); err != nil {
		t.Fatal(err)
	}
	if err := b2.b.RemoveKey(id2, true); !errors.Is(err, dotmesh.ErrInUse) {
		t.Fatalf("removing the last key: %v", err)
	}
	b2.Close()
	if _, err := Open(dir, Options{Logger: testLogger(t), Password: []byte("pw")}); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("a removed key's password: %v", err)
	}
	// A key file changed by hand (a slot swapped for one of another
	// store) does not open.
	other := t.TempDir()
	ob, err := Open(other, sealedOpts(t, "second"))
	if err != nil {
		t.Fatal(err)
	}
	ob.Close()
	okf, _ := os.ReadFile(filepath.Join(other, keyFileName))
	os.WriteFile(filepath.Join(dir, keyFileName), okf, 0o600)
	b3, err := Open(dir, Options{Logger: testLogger(t), Password: []byte("second")})
	if err == nil {
		b3.Close()
		t.Fatal("another store's key file opened this store")
	}
	if !errors.Is(err, dotmesh.ErrCorrupt) {
		t.Fatalf("another store's key file: %v, want ErrCorrupt", err)
	}
}

// TestSealedInitKilled: a SIGKILL at any moment of initialising an
// encrypted store never leaves a directory that opens as a plain store.
func TestSealedInitKilled(t *testing.T) {
	if dir := os.Getenv("DM_TEST_SEALED_INIT"); dir != "" {
		b, err := Open(dir, sealedOpts(t, "pw"))
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	outcomes := map[string]int{}
	for i := 0; i < 30; i++ {
		parent := t.TempDir()
		dir := filepath.Join(parent, "dump")
		if i%2 == 1 {
			os.Mkdir(dir, 0o700) // an existing, empty directory
		}
		cmd := exec.Command(exe, "-test.run", "^TestSealedInitKilled$")
		cmd.Env = append(os.Environ(), "DM_TEST_SEALED_INIT="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Intn(40000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		_, statErr := os.Stat(filepath.Join(dir, "branches"))
		existed := statErr == nil
		pb, err := Open(dir, Options{Logger: testLogger(t)})
		switch {
		case err == nil && existed:
			pb.Close()
			t.Fatalf("run %d: a store killed during encrypted init opened as plain", i)
		case err == nil:
			// Killed before anything of the store was made: the directory
			// is new and empty; that is no store at all.
			pb.Close()
			outcomes["nothing made"]++
			continue
		}
		outcomes["refused plain"]++
		sb, err := Open(dir, Options{Logger: testLogger(t), Encrypt: true, Password: []byte("pw"), KDF: cheapKDF})
		if err != nil {
			t.Fatalf("run %d: reopening with encryption after the kill: %v", i, err)
		}
		if !sb.b.Encrypted() {
			t.Fatalf("run %d: not encrypted", i)
		}
		sb.Close()
	}
	t.Logf("outcomes: %v", outcomes)
}
