package dump

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/dotmesh-io/dotmesh/internal/seal"
)

// FuzzParseStoreKeyFile: an encrypted store's key file from disk.
func FuzzParseStoreKeyFile(f *testing.F) {
	k := storeKeyFile{Version: keyFileVersion, ID: "00112233445566778899aabbccddeeff", Cipher: seal.CipherAES256GCM}
	master := bytes.Repeat([]byte{4}, seal.KeySize)
	if err := k.addSlot(master, []byte("pw"), cheapKDF); err != nil {
		f.Fatal(err)
	}
	b, err := k.marshal(master)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"id":"00112233445566778899aabbccddeeff","cipher":"aes-256-gcm","keys":{"zz":{}},"mac":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseStoreKeyFile(b)
		if err != nil {
			return
		}
		if len(k.Keys) == 0 || len(k.MAC) != 64 {
			t.Fatalf("parsed a key file without keys or MAC: %+v", k)
		}
		for id, s := range k.Keys {
			if s.KDF.Name == seal.KDFArgon2id && s.KDF.Memory*s.KDF.Time <= 4096 || s.KDF.Name == seal.KDFScrypt && s.KDF.N*s.KDF.R <= 1<<13 {
				if m, ok := s.Unseal([]byte("pw"), slotAD(k.ID, id)); ok {
					newStoreKeys(k, m, id) // a MAC mismatch is an error, not a panic
				}
			}
		}
	})
}

// FuzzOpenSealedFile: sealed commit records, synced states and pins
// read from disk, plain and sealed stores.
func FuzzOpenSealedFile(f *testing.F) {
	k := storeKeyFile{Version: keyFileVersion, ID: "00112233445566778899aabbccddeeff", Cipher: seal.CipherXChaCha20Poly1305, Keys: map[string]seal.Slot{}}
	master := bytes.Repeat([]byte{5}, seal.KeySize)
	ck, _ := seal.Subkey(master, storeLabel+"config")
	k.MAC = k.macOf(ck)
	keys, err := newStoreKeys(k, master, "")
	if err != nil {
		f.Fatal(err)
	}
	sealed := &Backend{keys: keys, log: testLogger(f)}
	plain := &Backend{log: testLogger(f)}
	f.Add(sealed.sealFile(pinKind, bytes.Repeat([]byte{1}, 64)))
	f.Add(sealed.sealFile("synced state", []byte("00\n")))
	f.Add([]byte(sealedFileMagic + "x"))
	f.Add(binary.LittleEndian.AppendUint32(nil, 200))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, be := range []*Backend{sealed, plain} {
			if out, err := be.openFile(pinKind, b); err == nil && be.keys != nil && len(out) > len(b) {
				t.Fatalf("opened %d bytes from %d", len(out), len(b))
			}
			if out, err := be.openFile("commit record x", b); err == nil {
				parseRecord(out, "fuzz")
			}
		}
		if hs := sealed.openPins("fuzz", b); len(hs)%32 != 0 {
			t.Fatalf("pins of %d bytes", len(hs))
		}
	})
}
