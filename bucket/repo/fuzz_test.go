package repo

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Every parser of what a bucket returns gets a fuzz target: bad input is
// an error, never a panic.

func testCodecs(t testing.TB) map[string]*codec {
	t.Helper()
	master := bytes.Repeat([]byte{7}, 32)
	out := map[string]*codec{}
	for _, c := range []string{CipherXChaCha20Poly1305, CipherAES256GCM, ""} {
		var keys *keyring
		if c != "" {
			var err error
			if keys, err = newKeyring(master, c); err != nil {
				t.Fatal(err)
			}
		}
		cd, err := newCodec(keys)
		if err != nil {
			t.Fatal(err)
		}
		out[c] = cd
	}
	return out
}

func FuzzParseConfig(f *testing.F) {
	keys, _ := newKeyring(bytes.Repeat([]byte{1}, 32), CipherXChaCha20Poly1305)
	c := Config{Version: 1, ID: "00112233445566778899aabbccddeeff", Encrypted: true, Cipher: CipherXChaCha20Poly1305, Chunker: DefaultChunker}
	c.MAC = c.mac(keys.config)
	b, _ := json.Marshal(c)
	f.Add(b)
	p := Config{Version: 1, ID: c.ID, Chunker: DefaultChunker}
	b, _ = json.Marshal(p)
	f.Add(b)
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConfig(b)
		if err != nil {
			return
		}
		c.checkMAC(keys.config)
		if c.Encrypted {
			if _, err := newKeyring(bytes.Repeat([]byte{1}, 32), c.Cipher); err != nil {
				t.Fatalf("config with cipher %q parsed, but no keyring: %v", c.Cipher, err)
			}
		}
	})
}

func FuzzParseKeyFile(f *testing.F) {
	b, err := newKeyFile(bytes.Repeat([]byte{2}, 32), []byte("pw"), cheapKDF, "id", "keys/x", time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	b, _ = newKeyFile(bytes.Repeat([]byte{2}, 32), []byte("pw"), KDFParams{Name: KDFScrypt, N: 1024, R: 8, P: 1}, "id", "keys/x", time.Unix(0, 0))
	f.Add(b)
	f.Add([]byte(`{"version":1,"kdf":{"name":"argon2id","time":4294967295,"memory":4294967295,"threads":255}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseKeyFile(b)
		if err != nil {
			return
		}
		// Parsed parameters are bounded; derive only cheap ones here.
		if k.KDF.Name == KDFArgon2id && k.KDF.Memory*k.KDF.Time <= 4096 || k.KDF.Name == KDFScrypt && k.KDF.N*k.KDF.R <= 1<<13 {
			unsealKey(k, []byte("pw"), "id", "keys/x")
		}
	})
}

func FuzzOpenObject(f *testing.F) {
	codecs := testCodecs(f)
	for _, c := range codecs {
		f.Add(kindBlob, c.seal(kindBlob, "data/aa/x", []byte("hello"), false))
		f.Add(kindRecord, c.seal(kindRecord, "data/aa/x", bytes.Repeat([]byte("zstd "), 100), true))
	}
	f.Add(kindRef, []byte("DMR\x01\x03\x01"))
	f.Add(kindBlob, append([]byte{encZstd}, codecs[""].enc.EncodeAll(bytes.Repeat([]byte("z"), 1000), nil)...))
	f.Fuzz(func(t *testing.T, kind byte, b []byte) {
		for name, c := range codecs {
			pt, err := c.open(kind, "data/aa/x", b)
			if err == nil && len(pt) > MaxObjectSize {
				t.Fatalf("%s: opened %d bytes, over the limit", name, len(pt))
			}
		}
		parseHeader(b)
		// b as the checksummed content of a plain object: reaches the
		// decoding of what passed authentication (encoding, zstd).
		stored := append(header(kindBlob, modePlain), b...)
		sum := plainSum(stored, "data/aa/x")
		if pt, err := codecs[""].open(kindBlob, "data/aa/x", append(stored, sum[:]...)); err == nil && len(pt) > MaxObjectSize {
			t.Fatalf("opened %d bytes, over the limit", len(pt))
		}
	})
}

func FuzzParseLockFile(f *testing.F) {
	b, _ := json.Marshal(lockFile{Version: 1, Scope: scopeRepo, Exclusive: true, Time: time.Unix(1, 0), Host: "h", PID: 1, User: "u"})
	f.Add(b)
	f.Add([]byte(`{"version":1,"scope":"refs","time":"2026-01-01T00:00:00Z","pid":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, err := parseLockFile(b); err == nil {
			_ = l.describe()
		}
	})
}

// FuzzUntoken: record and ref names from object names.
func FuzzUntoken(f *testing.F) {
	codecs := testCodecs(f)
	for _, c := range codecs {
		f.Add(c.token("ref", "admin/dot/master"))
	}
	f.Add("zz")
	f.Fuzz(func(t *testing.T, tok string) {
		for cn, c := range codecs {
			name, err := c.untoken("ref", tok)
			if err != nil {
				continue
			}
			if got := c.token("ref", name); got != tok {
				t.Fatalf("%s: token %q decodes to %q, which encodes to %q", cn, tok, name, got)
			}
		}
	})
}

// FuzzParseBlobName: the listing of data/ is the blob index.
func FuzzParseBlobName(f *testing.F) {
	f.Add(BlobObject(ID{1, 2, 3}))
	f.Add("data/00/00")
	f.Add("refs/6162/v00000000000000000001")
	f.Fuzz(func(t *testing.T, name string) {
		if tok, err := parseRefObject(name); err == nil && !strings.HasPrefix(name, refsDir+tok+"/v") {
			t.Fatalf("ref object %q has token %q", name, tok)
		}
		if id, err := ParseBlobObject(name); err == nil && BlobObject(id) != name {
			t.Fatalf("%q parses to %s, named %q", name, id, BlobObject(id))
		}
		if v, ok := parseVersion(name); ok && refObject("", v) != name && "v"+name[1:] != name {
			t.Fatalf("version %q parses to %d", name, v)
		}
	})
}
