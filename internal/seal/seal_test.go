package seal

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

var cheapKDF = KDFParams{Name: KDFArgon2id, Time: 1, Memory: 1024, Threads: 1}

func TestSealOpen(t *testing.T) {
	for _, c := range []string{CipherAES256GCM, CipherXChaCha20Poly1305} {
		aead, err := NewAEAD(c, bytes.Repeat([]byte{3}, KeySize))
		if err != nil {
			t.Fatal(err)
		}
		hdr := []byte("HDR")
		out := SealParts(aead, append([]byte(nil), hdr...), []byte("ad"), []byte{1}, []byte("hello"))
		if !bytes.HasPrefix(out, hdr) || len(out) != len(hdr)+Overhead(aead)+6 {
			t.Fatalf("%s: sealed %d bytes %q", c, len(out), out)
		}
		if bytes.Contains(out, []byte("hello")) {
			t.Fatalf("%s: plaintext visible in %q", c, out)
		}
		pt, err := Open(aead, nil, out[len(hdr):], []byte("ad"))
		if err != nil || string(pt) != "\x01hello" {
			t.Fatalf("%s: opened %q, %v", c, pt, err)
		}
		if _, err := Open(aead, nil, out[len(hdr):], []byte("other")); !errors.Is(err, ErrOpen) {
			t.Fatalf("%s: other associated data opened: %v", c, err)
		}
		bad := append([]byte(nil), out...)
		bad[len(bad)-1] ^= 1
		if _, err := Open(aead, nil, bad[len(hdr):], []byte("ad")); !errors.Is(err, ErrOpen) {
			t.Fatalf("%s: flipped byte opened: %v", c, err)
		}
		if _, err := Open(aead, nil, out[len(hdr):len(hdr)+3], []byte("ad")); !errors.Is(err, ErrOpen) {
			t.Fatalf("%s: truncated opened: %v", c, err)
		}
		// Two seals of one plaintext differ (random nonces).
		if again := SealParts(aead, nil, []byte("ad"), []byte("\x01hello")); bytes.Equal(again, out[len(hdr):]) {
			t.Fatalf("%s: sealing twice gave the same bytes", c)
		}
	}
	if _, err := NewAEAD("rot13", make([]byte, KeySize)); err == nil {
		t.Fatal("unknown cipher accepted")
	}
}

func TestSubkeyAndKeyedHash(t *testing.T) {
	m := NewMaster()
	a, _ := Subkey(m, "x v1 a")
	b, _ := Subkey(m, "x v1 b")
	if bytes.Equal(a, b) || len(a) != KeySize {
		t.Fatalf("subkeys of two labels: %x %x", a, b)
	}
	if _, err := Subkey(m[:5], "x"); err == nil {
		t.Fatal("short master key accepted")
	}
	var k1, k2 [KeySize]byte
	copy(k1[:], a)
	copy(k2[:], b)
	h := []byte("content hash")
	if KeyedHash(&k1, h) == KeyedHash(&k2, h) || KeyedHash(&k1, h) != KeyedHash(&k1, h) {
		t.Fatal("keyed hash is not keyed or not deterministic")
	}
}

func TestSlot(t *testing.T) {
	master := NewMaster()
	for _, p := range []KDFParams{cheapKDF, {Name: KDFScrypt, N: 1024, R: 8, P: 1}} {
		s, err := NewSlot(master, []byte("pw"), p, []byte("owner/slot"), 1, time.Unix(5, 0))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(s)
		s2, err := ParseSlot(b, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSlot(b, 2); err == nil {
			t.Fatal("slot of another version parsed")
		}
		got, ok := s2.Unseal([]byte("pw"), []byte("owner/slot"))
		if !ok || !bytes.Equal(got, master) {
			t.Fatalf("%s: right password: %x, %v", p.Name, got, ok)
		}
		if _, ok := s2.Unseal([]byte("pw2"), []byte("owner/slot")); ok {
			t.Fatalf("%s: wrong password opened", p.Name)
		}
		if _, ok := s2.Unseal([]byte("pw"), []byte("owner/other")); ok {
			t.Fatalf("%s: slot moved to another owner opened", p.Name)
		}
	}
	if _, err := NewSlot(master, []byte("pw"), KDFParams{Name: "pbkdf2"}, nil, 1, time.Now()); err == nil {
		t.Fatal("unknown KDF accepted")
	}
}

// TestSlotCache: a password that opened is not derived again; one that
// did not is not kept.
func TestSlotCache(t *testing.T) {
	s, err := NewSlot(NewMaster(), []byte("pw"), cheapKDF, []byte("ad"), 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := derived.get(s.cacheKey([]byte("pw"))); !ok {
		t.Fatal("a new slot's key is not cached")
	}
	delete(derived.m, s.cacheKey([]byte("pw")))
	if _, ok := s.Unseal([]byte("nope"), []byte("ad")); ok {
		t.Fatal("wrong password opened")
	}
	if _, ok := derived.get(s.cacheKey([]byte("nope"))); ok {
		t.Fatal("a wrong password's key is cached")
	}
	if _, ok := s.Unseal([]byte("pw"), []byte("ad")); !ok {
		t.Fatal("right password did not open")
	}
	dk, ok := derived.get(s.cacheKey([]byte("pw")))
	if !ok {
		t.Fatal("the key of a password that opened is not cached")
	}
	// The cached key is what is used: spoil it and the slot no longer opens.
	derived.put(s.cacheKey([]byte("pw")), make([]byte, KeySize))
	if _, ok := s.Unseal([]byte("pw"), []byte("ad")); ok {
		t.Fatal("Unseal derived again instead of using the cached key")
	}
	derived.put(s.cacheKey([]byte("pw")), dk)
	if s.cacheKey([]byte("pw")) == s.cacheKey([]byte("pw2")) {
		t.Fatal("two passwords share a cache key")
	}
	for i := 0; i < maxCachedKeys+5; i++ {
		derived.put([32]byte{byte(i), 1}, dk)
	}
	if n := len(derived.m); n > maxCachedKeys {
		t.Fatalf("cache holds %d keys, over %d", n, maxCachedKeys)
	}
}

func FuzzParseSlot(f *testing.F) {
	s, _ := NewSlot(NewMaster(), []byte("pw"), cheapKDF, []byte("ad"), 1, time.Unix(0, 0))
	b, _ := json.Marshal(s)
	f.Add(b)
	f.Add([]byte(`{"version":1,"kdf":{"name":"scrypt","n":1099511627776,"r":1,"p":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSlot(b, 1)
		if err != nil {
			return
		}
		if err := s.KDF.Validate(); err != nil {
			t.Fatalf("parsed slot has invalid KDF: %v", err)
		}
		if s.KDF.Name == KDFArgon2id && s.KDF.Memory*s.KDF.Time <= 4096 || s.KDF.Name == KDFScrypt && s.KDF.N*s.KDF.R <= 1<<13 {
			s.Unseal([]byte("pw"), []byte("ad"))
		}
	})
}
