package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func initRepo(t *testing.T, st bucket.Store, plain bool) *Repo {
	t.Helper()
	if plain {
		return initCipher(t, st, "plain")
	}
	return initCipher(t, st, "")
}

// initCipher makes a repository sealed with cipher (default: ""), or
// without encryption ("plain").
func initCipher(t *testing.T, st bucket.Store, cipher string) *Repo {
	t.Helper()
	o := InitOptions{Password: []byte("secret one"), KDF: cheapKDF, Cipher: cipher}
	if cipher == "plain" {
		o = InitOptions{NoEncryption: true}
	}
	r, err := Init(context.Background(), st, o, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func openRepo(t *testing.T, st bucket.Store, password string) *Repo {
	t.Helper()
	r, err := Open(context.Background(), st, []byte(password), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func objectNames(t *testing.T, st bucket.Store, prefix string) []string {
	t.Helper()
	var names []string
	if err := st.List(context.Background(), prefix, func(oi bucket.ObjectInfo) error {
		names = append(names, oi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestRoundTrip(t *testing.T) {
	for _, cipher := range []string{CipherAES256GCM, CipherXChaCha20Poly1305, "plain"} {
		t.Run(cipher, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st bucket.Store) {
				ctx := context.Background()
				plain := cipher == "plain"
				r := initCipher(t, st, cipher)
				if !plain && r.Config().Cipher != cipher {
					t.Fatalf("config cipher %q, want %q", r.Config().Cipher, cipher)
				}
				compressible := bytes.Repeat([]byte("dotmesh chunk "), 10000)
				blobs := [][]byte{randomData(1 << 20), compressible, {}, []byte("x")}
				var ids []ID
				for _, b := range blobs {
					id, stored, err := r.PutBlob(ctx, b)
					if err != nil || !stored {
						t.Fatalf("PutBlob: stored %v, %v", stored, err)
					}
					if id != r.BlobID(ContentHash(b)) {
						t.Fatalf("PutBlob's id %s is not BlobID of the content hash", id)
					}
					ids = append(ids, id)
					if _, stored, err := r.PutBlob(ctx, b); err != nil || stored {
						t.Fatalf("second PutBlob of the same data: stored %v, %v", stored, err)
					}
				}
				flush(t, r)
				// The compressible blob is stored compressed.
				if _, e := packOf(t, r, ids[1]); int(e.Length) > len(compressible)/10 {
					sz := e.Length
					t.Errorf("compressible blob of %d bytes stored in %d", len(compressible), sz)
				}
				if err := r.PutRecord(ctx, "commit", "admin/dot/c1", []byte(`{"id":"c1"}`)); err != nil {
					t.Fatal(err)
				}
				if err := r.PutRecord(ctx, "commit", "admin/dot", []byte(`{"id":"dot"}`)); err != nil {
					t.Fatal(err)
				}
				if err := r.PutRecord(ctx, "manifest", "m1", compressible); err != nil {
					t.Fatal(err)
				}

				// Everything reads back through a fresh Open.
				password := "secret one"
				if plain {
					password = ""
				}
				r2 := openRepo(t, st, password)
				if r2.Config().ID != r.Config().ID || r2.Config().Encrypted == plain {
					t.Fatalf("reopened config %+v, created %+v", r2.Config(), r.Config())
				}
				for i, id := range ids {
					got, err := r2.GetBlob(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, blobs[i]) {
						t.Fatalf("blob %d read back differs", i)
					}
				}
				missing := r2.BlobID(ContentHash([]byte("never stored")))
				has, err := r2.HasBlobs(ctx, append(slices.Clone(ids), missing))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(has, []bool{true, true, true, true, false}) {
					t.Fatalf("HasBlobs = %v", has)
				}
				if _, err := r2.GetBlob(ctx, missing); !errors.Is(err, dotmesh.ErrNotFound) {
					t.Fatalf("GetBlob of a missing blob: %v", err)
				}
				var listed []ID
				if err := r2.ListBlobs(ctx, func(id ID, size int64) error {
					listed = append(listed, id)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				want := slices.Clone(ids)
				slices.SortFunc(want, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
				if !slices.Equal(listed, want) {
					t.Fatalf("ListBlobs = %v, want %v", listed, want)
				}
				names, err := r2.ListRecords(ctx, "commit", "")
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(names)
				if !slices.Equal(names, []string{"admin/dot", "admin/dot/c1"}) {
					t.Fatalf("ListRecords = %q", names)
				}
				if err := r.PutRecord(ctx, "commit", "admin/dotx/c2", nil); err != nil {
					t.Fatal(err)
				}
				if names, err := r2.ListRecords(ctx, "commit", "admin/dot"); err != nil || !slices.Equal(names, []string{"admin/dot/c1"}) {
					t.Fatalf("ListRecords under admin/dot = %q, %v", names, err)
				}
				if names, err := r2.ListRecords(ctx, "manifest", ""); err != nil || !slices.Equal(names, []string{"m1"}) {
					t.Fatalf("ListRecords of manifests = %q, %v", names, err)
				}
				got, err := r2.GetRecord(ctx, "manifest", "m1")
				if err != nil || !bytes.Equal(got, compressible) {
					t.Fatalf("GetRecord: %v", err)
				}
				if err := r2.DeleteRecord(ctx, "manifest", "m1"); err != nil {
					t.Fatal(err)
				}
				if _, err := r2.GetRecord(ctx, "manifest", "m1"); !errors.Is(err, dotmesh.ErrNotFound) || !strings.Contains(err.Error(), "m1") {
					t.Fatalf("GetRecord of a deleted record: %v", err)
				}
				if err := r2.DeleteBlob(ctx, ids[0]); err != nil {
					t.Fatal(err)
				}
				if has, _ := r2.HasBlobs(ctx, ids[:1]); has[0] {
					t.Fatal("HasBlobs after DeleteBlob says present")
				}
				res, err := r2.Check(ctx, CheckOptions{ReadData: true})
				if err != nil || res.Err() != nil {
					t.Fatalf("Check of a sound repository: %v, %v", err, res.Err())
				}
				if res.Blobs != 3 || res.BlobsRead != 3 {
					t.Fatalf("Check listed %d blobs, read %d; want 3, 3", res.Blobs, res.BlobsRead)
				}
			})
		})
	}
}

// TestNamesHideContent: in an encrypted repository no object name or
// byte shows a content hash, a record name or plaintext.
func TestNamesHideContent(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		r := initRepo(t, st, false)
		data := bytes.Repeat([]byte("plaintext-marker "), 1000)
		h := ContentHash(data)
		if _, _, err := r.PutBlob(ctx, data); err != nil {
			t.Fatal(err)
		}
		flush(t, r)
		if err := r.PutRecord(ctx, "commit", "secretdot", []byte("plaintext-marker")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SetRef(ctx, "secretdot/master", 0, []byte("plaintext-marker")); err != nil {
			t.Fatal(err)
		}
		for _, name := range objectNames(t, st, "") {
			for _, leak := range []string{fmt.Sprintf("%x", h), fmt.Sprintf("%x", h[:8]), "secretdot", fmt.Sprintf("%x", "secretdot")} {
				if strings.Contains(name, leak) {
					t.Errorf("object name %s shows %s", name, leak)
				}
			}
			if name != configName && !strings.HasPrefix(name, keysDir) && bytes.Contains(rawGet(t, st, name), []byte("plaintext-marker")) {
				t.Errorf("object %s holds plaintext", name)
			}
		}
	})
}

func TestPlainRepository(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		r := initRepo(t, st, true)
		data := randomData(4096)
		id, _, err := r.PutBlob(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if id != ID(ContentHash(data)) {
			t.Fatalf("plain blob id %s is not the content hash", id)
		}
		flush(t, r)
		pack, e := packOf(t, r, id)
		stored := rawGet(t, st, pack)
		if !bytes.Contains(stored, data) {
			t.Fatal("a plain repository's blob does not hold its plaintext")
		}
		var cfg Config
		if err := json.Unmarshal(rawGet(t, st, configName), &cfg); err != nil || cfg.Encrypted {
			t.Fatalf("config %+v, %v: want encrypted false", cfg, err)
		}
		if keys := objectNames(t, st, keysDir); len(keys) != 0 {
			t.Fatalf("plain repository has keys %v", keys)
		}
		if _, err := r.AddKey(ctx, []byte("pw"), cheapKDF); !errors.Is(err, dotmesh.ErrNotSupported) {
			t.Fatalf("AddKey on a plain repository: %v", err)
		}
		// The checksum still catches a flipped bit.
		stored[e.Offset+e.Length/2] ^= 1
		rawPut(t, st, pack, stored)
		if _, err := r.GetBlob(ctx, id); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), pack) {
			t.Fatalf("GetBlob of a changed plain blob: %v", err)
		}
		// A second Init over it is refused.
		if _, err := Init(ctx, st, InitOptions{NoEncryption: true}, Options{}); !errors.Is(err, dotmesh.ErrAlreadyExists) {
			t.Fatalf("Init over a repository: %v", err)
		}
	})
}

func TestWrongPassword(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		initRepo(t, st, false)
		_, err := Open(context.Background(), st, []byte("not the password"), Options{})
		if !errors.Is(err, ErrWrongPassword) || !errors.Is(err, dotmesh.ErrUnauthorized) {
			t.Fatalf("Open with a wrong password: %v", err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error is not one line: %q", err)
		}
		if _, err := Open(context.Background(), st, nil, Options{}); !errors.Is(err, dotmesh.ErrUnauthorized) {
			t.Fatalf("Open without a password: %v", err)
		}
	})
}

func TestKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		r := initRepo(t, st, false)
		id2, err := r.AddKey(ctx, []byte("secret two"), KDFParams{Name: KDFScrypt, N: 1024, R: 8, P: 1})
		if err != nil {
			t.Fatal(err)
		}
		keys, err := r.Keys(ctx)
		if err != nil || len(keys) != 2 {
			t.Fatalf("Keys = %v, %v", keys, err)
		}
		for _, k := range keys {
			if k.InUse != (k.ID == r.KeyID()) {
				t.Errorf("key %s InUse %v", k.ID, k.InUse)
			}
		}
		r2 := openRepo(t, st, "secret two")
		if r2.KeyID() != id2 {
			t.Fatalf("opened with key %s, want %s", r2.KeyID(), id2)
		}
		// Both keys open the same master key: r2 reads what r wrote.
		id, _, err := r.PutBlob(ctx, []byte("shared"))
		if err != nil {
			t.Fatal(err)
		}
		flush(t, r)
		if b, err := r2.GetBlob(ctx, id); err != nil || string(b) != "shared" {
			t.Fatalf("GetBlob through the second key: %q, %v", b, err)
		}
		var inUse *KeyInUseError
		if err := r2.RemoveKey(ctx, id2, false); !errors.As(err, &inUse) || inUse.Last || !errors.Is(err, dotmesh.ErrInUse) {
			t.Fatalf("RemoveKey of the key in use: %v", err)
		}
		if err := r2.RemoveKey(ctx, r.KeyID(), false); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, st, []byte("secret one"), Options{}); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("Open with a removed key's password: %v", err)
		}
		if err := r2.RemoveKey(ctx, id2, false); !errors.As(err, &inUse) || !inUse.Last {
			t.Fatalf("RemoveKey of the last key: %v", err)
		}
		if err := r2.RemoveKey(ctx, "0123", false); !errors.Is(err, dotmesh.ErrNotFound) {
			t.Fatalf("RemoveKey of an unknown key: %v", err)
		}
		if _, err := r2.AddKey(ctx, []byte("x"), KDFParams{Name: "pbkdf2"}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Fatalf("AddKey with an unknown KDF: %v", err)
		}
	})
}

// TestTamper: a changed, truncated, swapped or renamed object is a
// CorruptError naming it, from the read and from Check.
func TestTamper(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st bucket.Store) {
				ctx := context.Background()
				r := initRepo(t, st, plain)
				// One pack each (a flush after each blob).
				put := func() ID {
					id, _, err := r.PutBlob(ctx, randomData(10000))
					if err != nil {
						t.Fatal(err)
					}
					flush(t, r)
					return id
				}
				a, b, c, d := put(), put(), put(), put()
				r.PutRecord(ctx, "commit", "one", []byte("record one"))
				r.PutRecord(ctx, "commit", "two", []byte("record two"))
				obj := func(id ID) string { p, _ := packOf(t, r, id); return p }
				rec := func(name string) string { n, _ := r.recordName("commit", name); return n }

				changed := rawGet(t, st, obj(a))
				changed[len(changed)/3] ^= 0x80 // in the blob, not the header
				rawPut(t, st, obj(a), changed)
				rawPut(t, st, obj(b), rawGet(t, st, obj(b))[:5000])
				rawPut(t, st, obj(c), rawGet(t, st, obj(d))) // swapped
				rawPut(t, st, rec("one"), rawGet(t, st, rec("two")))

				for _, id := range []ID{a, b, c} {
					_, err := r.GetBlob(ctx, id)
					var ce *CorruptError
					if !errors.As(err, &ce) || ce.Name != obj(id) || !errors.Is(err, dotmesh.ErrCorrupt) {
						t.Errorf("GetBlob of a damaged %s: %v", obj(id), err)
					}
				}
				if _, err := r.GetBlob(ctx, d); err != nil {
					t.Errorf("GetBlob of the sound blob: %v", err)
				}
				if _, err := r.GetRecord(ctx, "commit", "one"); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), rec("one")) {
					t.Errorf("GetRecord of a swapped record: %v", err)
				}
				// A blob moved to a record's name (another kind) is caught too.
				rawPut(t, st, rec("two"), rawGet(t, st, obj(d)))
				if _, err := r.GetRecord(ctx, "commit", "two"); !errors.Is(err, dotmesh.ErrCorrupt) {
					t.Errorf("GetRecord of a blob under a record's name: %v", err)
				}

				res, err := r.Check(ctx, CheckOptions{ReadData: true})
				if err != nil {
					t.Fatal(err)
				}
				var bad []string
				for _, p := range res.Problems {
					bad = append(bad, p.Object)
				}
				slices.Sort(bad)
				want := []string{obj(a), obj(b), obj(c), rec("one"), rec("two")}
				slices.Sort(want)
				if !slices.Equal(bad, want) {
					t.Fatalf("Check found %q, want %q", bad, want)
				}
				if err := res.Err(); !errors.Is(err, dotmesh.ErrCorrupt) {
					t.Fatalf("CheckResult.Err = %v", err)
				}
				// Without ReadData blobs are not opened: the records, and
				// the packs whose header fails (truncated, swapped).
				res, _ = r.Check(ctx, CheckOptions{})
				if len(res.Problems) != 4 || res.BlobsRead != 0 {
					t.Fatalf("Check without data: %d problems, %d blobs read", len(res.Problems), res.BlobsRead)
				}
				// A stray object is named.
				rawPut(t, st, "stray", []byte("x"))
				res, _ = r.Check(ctx, CheckOptions{})
				if !slices.ContainsFunc(res.Problems, func(p Problem) bool { return p.Object == "stray" }) {
					t.Fatalf("Check missed a stray object: %v", res.Problems)
				}
			})
		})
	}
}

func TestConfigTamper(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		initRepo(t, st, false)
		orig := rawGet(t, st, configName)
		var cfg Config
		json.Unmarshal(orig, &cfg)
		for name, change := range map[string]func(c *Config){
			"chunker": func(c *Config) { c.Chunker.AvgBits = 20 },
			"cipher":  func(c *Config) { c.Cipher = CipherXChaCha20Poly1305 },
			"plain":   func(c *Config) { c.Encrypted, c.Cipher, c.MAC = false, "", "" },
		} {
			c := cfg
			change(&c)
			b, _ := json.Marshal(c)
			rawPut(t, st, configName, b)
			_, err := Open(ctx, st, []byte("secret one"), Options{})
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Name != configName {
				t.Errorf("Open with a changed config (%s): %v", name, err)
			}
		}
		rawPut(t, st, configName, []byte("{not json"))
		if _, err := Open(ctx, st, []byte("secret one"), Options{}); !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Errorf("Open with a garbled config: %v", err)
		}
		rawPut(t, st, configName, orig)
		openRepo(t, st, "secret one")
	})
}

// forEachSwap runs f on a store with conditional writes ("create") and
// on one without, where ref swaps take the refs lock ("locked").
func forEachSwap(t *testing.T, f func(t *testing.T, st bucket.Store, kind string)) {
	for _, kind := range []string{"create", "locked"} {
		t.Run(kind, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st bucket.Store) {
				if kind == "locked" {
					f(t, noCreate{st}, kind)
					return
				}
				// The swap must not fall back to the lock unseen.
				if err := st.Create(context.Background(), "create-probe", strings.NewReader("x"), 1); err != nil {
					t.Fatalf("the store has no conditional create: %v", err)
				}
				f(t, st, kind)
			})
		})
	}
}

func TestRefs(t *testing.T) {
	forEachSwap(t, func(t *testing.T, s bucket.Store, kind string) {
		ctx := context.Background()
		r := initRepo(t, s, false)
		st0, err := r.GetRef(ctx, "admin/dot/master")
		if err != nil || st0.Exists || st0.Version != 0 {
			t.Fatalf("GetRef of a new ref: %+v, %v", st0, err)
		}
		v := uint64(0)
		for i := range 5 {
			if v, err = r.SetRef(ctx, "admin/dot/master", v, fmt.Appendf(nil, "head %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := r.GetRef(ctx, "admin/dot/master")
		if err != nil || !got.Exists || got.Version != v || string(got.Data) != "head 4" {
			t.Fatalf("GetRef = %+v, %v; want version %d, head 4", got, err, v)
		}
		if _, err := r.SetRef(ctx, "admin/dot/master", v-1, []byte("stale")); !errors.Is(err, dotmesh.ErrConflict) {
			t.Fatalf("SetRef from an old version: %v", err)
		}
		if _, err := r.SetRef(ctx, "admin/dot/master", v+3, []byte("future")); !errors.Is(err, dotmesh.ErrConflict) {
			t.Fatalf("SetRef from a version never written: %v", err)
		}
		// Old versions stay until CompactRefs keeps the newest two.
		prefix, _ := r.refPrefix("admin/dot/master")
		if vs, _ := r.versions(ctx, prefix); len(vs) != 5 {
			t.Fatalf("versions before compaction: %v", vs)
		}
		if n, err := r.CompactRefs(ctx); err != nil || n != 3 {
			t.Fatalf("CompactRefs = %d, %v; want 3", n, err)
		}
		if vs, _ := r.versions(ctx, prefix); !slices.Equal(vs, []uint64{v - 1, v}) {
			t.Fatalf("versions kept: %v", vs)
		}
		if got, err := r.GetRef(ctx, "admin/dot/master"); err != nil || got.Version != v || string(got.Data) != "head 4" {
			t.Fatalf("GetRef after compaction = %+v, %v", got, err)
		}
		if _, err := r.SetRef(ctx, "admin/other/master", 0, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if names, err := r.ListRefs(ctx, ""); err != nil || !slices.Equal(names, []string{"admin/dot/master", "admin/other/master"}) {
			t.Fatalf("ListRefs = %q, %v", names, err)
		}
		if err := r.DeleteRef(ctx, "admin/dot/master", v); err != nil {
			t.Fatal(err)
		}
		got, err = r.GetRef(ctx, "admin/dot/master")
		if err != nil || got.Exists || got.Version != v+1 {
			t.Fatalf("GetRef of a deleted ref: %+v, %v", got, err)
		}
		if names, _ := r.ListRefs(ctx, ""); !slices.Equal(names, []string{"admin/other/master"}) {
			t.Fatalf("ListRefs after delete = %q", names)
		}
		// Refs nest: "admin/other" beside "admin/other/master".
		if _, err := r.SetRef(ctx, "admin/other", 0, []byte("y")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SetRef(ctx, "admin/otherx/master", 0, []byte("z")); err != nil {
			t.Fatal(err)
		}
		if names, err := r.ListRefs(ctx, "admin/other"); err != nil || !slices.Equal(names, []string{"admin/other/master"}) {
			t.Fatalf("ListRefs under admin/other = %q, %v", names, err)
		}
		if names, _ := r.ListRefs(ctx, "admin"); !slices.Equal(names, []string{"admin/other", "admin/other/master", "admin/otherx/master"}) {
			t.Fatalf("ListRefs under admin = %q", names)
		}
		// Recreated from the deleted version.
		if _, err := r.SetRef(ctx, "admin/dot/master", got.Version, []byte("again")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SetRef(ctx, "bad name", 0, nil); !errors.Is(err, dotmesh.ErrInvalidName) {
			t.Fatalf("SetRef of a bad name: %v", err)
		}
	})
}

// TestRefRace: writers swapping one ref from one version at once: exactly
// one wins, the others get ErrConflict, and the winner's value stays.
func TestRefRace(t *testing.T) {
	forEachSwap(t, func(t *testing.T, s bucket.Store, kind string) {
		ctx := context.Background()
		initRepo(t, s, false)
		const writers = 6
		for round := range 3 {
			// Separate Repos, as separate nodes.
			repos := make([]*Repo, writers)
			for i := range repos {
				repos[i] = openRepo(t, s, "secret one")
			}
			cur, _ := repos[0].GetRef(ctx, "dot/master")
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				winners []int
				start   = make(chan struct{})
			)
			for i, r := range repos {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := r.SetRef(ctx, "dot/master", cur.Version, fmt.Appendf(nil, "writer %d round %d", i, round))
					switch {
					case err == nil:
						mu.Lock()
						winners = append(winners, i)
						mu.Unlock()
					case errors.Is(err, dotmesh.ErrConflict):
					default:
						t.Errorf("writer %d: %v", i, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			// Under the lock fallback writers wait for the refs lock in
			// turn: one wins, the later ones find the ref moved.
			if len(winners) != 1 {
				t.Fatalf("round %d: winners %v", round, winners)
			}
			got, err := repos[0].GetRef(ctx, "dot/master")
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("writer %d round %d", winners[0], round); string(got.Data) != want || got.Version != cur.Version+1 {
				t.Fatalf("round %d: ref %q at %d, want %q at %d", round, got.Data, got.Version, want, cur.Version+1)
			}
		}
	})
}

func TestLocks(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		initRepo(t, st, false)
		now := time.Now()
		clock := func() time.Time { return now }
		open := func(host string, pid int) *Repo {
			r, err := Open(ctx, st, []byte("secret one"), Options{Now: clock, Host: host, PID: pid, LockStaleAfter: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			return r
		}
		// Live pids: a lock of the tester's own host and a gone pid is stale.
		a, b := open("host-a", os.Getpid()), open("host-b", os.Getpid())

		s1, err := a.Lock(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := b.Lock(ctx, false)
		if err != nil {
			t.Fatalf("a second shared lock: %v", err)
		}
		_, err = b.Lock(ctx, true)
		var le *LockedError
		if !errors.As(err, &le) || !errors.Is(err, dotmesh.ErrInUse) || !strings.Contains(err.Error(), "shared lock held by") {
			t.Fatalf("exclusive lock beside shared ones: %v", err)
		}
		if n := len(objectNames(t, st, locksDir)); n != 2 {
			t.Fatalf("%d lock objects after a refused lock, want 2", n)
		}
		if err := s1.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s2.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		x, err := a.Lock(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Lock(ctx, false); !errors.As(err, &le) || !strings.Contains(err.Error(), "exclusive") {
			t.Fatalf("shared lock beside an exclusive one: %v", err)
		}
		// Refreshed, the lock stays live past the stale time.
		now = now.Add(50 * time.Minute)
		if err := x.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(50 * time.Minute)
		if _, err := b.Lock(ctx, false); !errors.As(err, &le) {
			t.Fatalf("lock beside a refreshed exclusive one: %v", err)
		}
		// Not refreshed for over an hour: stale, and removed by the next Lock.
		now = now.Add(61 * time.Minute)
		descr, _ := b.Locks(ctx)
		if len(descr) != 1 || !strings.Contains(descr[0], "stale") {
			t.Fatalf("Locks = %q", descr)
		}
		s3, err := b.Lock(ctx, false)
		if err != nil {
			t.Fatalf("lock beside a stale one: %v", err)
		}
		if err := x.Refresh(ctx); !errors.Is(err, dotmesh.ErrConflict) {
			t.Fatalf("Refresh of a lock removed as stale: %v", err)
		}
		var lost *LockLostError
		if err := x.Unlock(ctx); !errors.As(err, &lost) {
			t.Fatalf("Unlock of a lost lock: %v", err)
		}
		s3.Unlock(ctx)

		// A lock of this host whose process is gone is stale at once.
		dead := open(defaultHost(), deadPID(t))
		if _, err := dead.Lock(ctx, true); err != nil {
			t.Fatal(err)
		}
		live := open(defaultHost(), 0)
		if n, err := live.RemoveStaleLocks(ctx); err != nil || n != 1 {
			t.Fatalf("RemoveStaleLocks = %d, %v; want 1", n, err)
		}
		if names := objectNames(t, st, locksDir); len(names) != 0 {
			t.Fatalf("locks left: %v", names)
		}
	})
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("run true, whose pid serves as a gone process's: %v", err)
	}
	return cmd.Process.Pid
}

// TestLockRace: exclusive lockers at once never both hold the lock.
func TestLockRace(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		initRepo(t, st, false)
		const n = 6
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			holders int
			start   = make(chan struct{})
		)
		for range n {
			r := openRepo(t, st, "secret one")
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				l, err := r.Lock(ctx, true)
				if err != nil {
					if !errors.Is(err, dotmesh.ErrInUse) {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				holders++
				mu.Unlock()
				// Hold until all tried.
				time.Sleep(200 * time.Millisecond)
				l.Unlock(ctx)
			}()
		}
		close(start)
		wg.Wait()
		if holders > 1 {
			t.Fatalf("%d exclusive holders at once", holders)
		}
	})
}

// TestLockReloadsIndex: a blob deleted by another writer is not taken as
// present once a lock is held.
func TestLockReloadsIndex(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		a := initRepo(t, st, false)
		b := openRepo(t, st, "secret one")
		data := []byte("chunk")
		id, _, _ := a.PutBlob(ctx, data)
		flush(t, a)
		if has, _ := b.HasBlobs(ctx, []ID{id}); !has[0] {
			t.Fatal("HasBlobs misses a blob")
		}
		if err := a.DeleteBlob(ctx, id); err != nil {
			t.Fatal(err)
		}
		l, err := b.Lock(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Unlock(ctx)
		if _, stored, err := b.PutBlob(ctx, data); err != nil || !stored {
			t.Fatalf("PutBlob after another deleted the blob: stored %v, %v", stored, err)
		}
	})
}

func TestBadArguments(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		if _, err := Init(ctx, st, InitOptions{}, Options{}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Fatalf("Init without a password: %v", err)
		}
		if _, err := Init(ctx, st, InitOptions{Password: []byte("x"), KDF: KDFParams{Name: KDFScrypt, N: 3, R: 1, P: 1}}, Options{}); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Fatalf("Init with a bad KDF: %v", err)
		}
		if names := objectNames(t, st, ""); len(names) != 0 {
			t.Fatalf("a refused Init left %v", names)
		}
		if _, err := Open(ctx, st, []byte("x"), Options{}); !errors.Is(err, dotmesh.ErrNotFound) {
			t.Fatalf("Open of an empty store: %v", err)
		}
		r := initRepo(t, st, false)
		for _, name := range []string{"", ".hidden", "a//b", "a b", strings.Repeat("x", MaxRecordName+1), strings.Repeat("a/", 79) + "a"} {
			if err := r.PutRecord(ctx, "commit", name, nil); !errors.Is(err, dotmesh.ErrInvalidName) {
				t.Errorf("PutRecord %q: %v", name, err)
			}
		}
		for _, kind := range []string{"", "Commit", "c/d", "9a"} {
			if err := r.PutRecord(ctx, kind, "x", nil); !errors.Is(err, dotmesh.ErrInvalidName) {
				t.Errorf("PutRecord of kind %q: %v", kind, err)
			}
		}
		if _, _, err := r.PutBlob(ctx, make([]byte, MaxObjectSize+1)); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("PutBlob over the size limit: %v", err)
		}
		flush(t, r)
		if names := objectNames(t, st, packsDir); len(names) != 0 {
			t.Fatalf("refused writes left %v", names)
		}
	})
}

// lostAnswer creates objects but reports the first create of each as
// unavailable, as a connection cut after the server stored it.
type lostAnswer struct {
	bucket.Store
	mu   sync.Mutex
	seen map[string]bool
}

func (l *lostAnswer) Create(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := l.Store.Create(ctx, name, r, size); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[name] {
		return nil
	}
	l.seen[name] = true
	return fmt.Errorf("%w: connection reset", dotmesh.ErrUnavailable)
}

// TestRefSwapLostAnswer: behind bucket.WithRetry, a swap whose create
// stored the version but lost the answer still wins, and a real
// conflict is still one.
func TestRefSwapLostAnswer(t *testing.T) {
	forEachStore(t, func(t *testing.T, st bucket.Store) {
		ctx := context.Background()
		s := bucket.WithRetry(&lostAnswer{Store: st, seen: map[string]bool{}}, bucket.RetryOptions{Attempts: 3, Base: time.Millisecond, Max: 2 * time.Millisecond})
		r := initRepo(t, s, false)
		v, err := r.SetRef(ctx, "dot/master", 0, []byte("mine"))
		if err != nil || v != 1 {
			t.Fatalf("SetRef whose answer was lost: %d, %v", v, err)
		}
		other := openRepo(t, s, "secret one")
		if _, err := other.SetRef(ctx, "dot/master", 1, []byte("theirs")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SetRef(ctx, "dot/master", 1, []byte("mine again")); !errors.Is(err, dotmesh.ErrConflict) {
			t.Fatalf("SetRef after another moved the ref: %v", err)
		}
	})
}

// TestPutHashedBlob: a writer's own hash stores the blob PutBlob would;
// a wrong one never comes back as data.
func TestPutHashedBlob(t *testing.T) {
	ctx := context.Background()
	st, err := bucket.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := initRepo(t, st, false)
	data := randomData(10000)
	id, stored, err := r.PutHashedBlob(ctx, ContentHash(data), data)
	if err != nil || !stored || id != r.BlobID(ContentHash(data)) {
		t.Fatalf("PutHashedBlob: %v, %v, %v", id, stored, err)
	}
	if _, again, err := r.PutBlob(ctx, data); err != nil || again {
		t.Fatalf("PutBlob of the same data stored it again (%v) or failed: %v", again, err)
	}
	other := randomData(100)
	bad, _, err := r.PutHashedBlob(ctx, ContentHash(data[:10]), other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetBlob(ctx, bad); !errors.As(err, new(*CorruptError)) {
		t.Fatalf("GetBlob of a pending blob stored under a wrong hash: %v; want a CorruptError", err)
	}
	flush(t, r)
	var ce *CorruptError
	if _, err := r.GetBlob(ctx, bad); !errors.As(err, &ce) {
		t.Fatalf("GetBlob of a blob stored under a wrong hash: %v; want a CorruptError", err)
	}
}
