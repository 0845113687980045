// Package seal holds the sealing primitives that dotmesh shares between
// bucket repositories (bucket/repo) and the dump backend's local store
// when it is encrypted (backend/dump): one implementation of each.
//
// # Lifecycle
//
// A sealed thing has one random 32-byte master key (NewMaster), made once
// when it is initialised and never stored in plain. It is kept in key
// slots (Slot): each slot holds the master key sealed with
// XChaCha20-Poly1305 under a key derived from a password (a key file's
// bytes count as a password) with Argon2id or scrypt (KDFParams, stored
// with the slot with its salt), bound to associated data that names the
// owner and the slot, so several passwords open one master key and a slot
// moved elsewhere does not open. Opening tries the slots (Slot.Unseal).
//
// From the master key Subkey derives, with HKDF-SHA256 and a label per
// use, the keys actually used: the AEAD of objects (NewAEAD: AES-256-GCM
// or XChaCha20-Poly1305; SealParts and Open put a random nonce in front
// and bind associated data), keyed hashes that name objects without
// showing their content hashes (KeyedHash), MACs.
//
// Argon2id's memory (19 MiB by default) is garbage once the key is
// derived; Derive hands it back to the OS at once, and a slot's derived
// key is cached in memory for the process's life (never written) when
// the slot is made or opens, keyed by a hash of the slot and the
// password, so that opening one repository again with one password (a
// node's next push to a bucket, say) does not derive again. Before
// Argon2id runs, Derive maps its memory (prefault.go: written once):
// measured, a fresh process's first derivation otherwise spent 1.2 s of
// CPU, mostly in page faults, not 0.55.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"
)

// Ciphers.
const (
	CipherXChaCha20Poly1305 = "xchacha20-poly1305"
	CipherAES256GCM         = "aes-256-gcm"
)

// KeySize is the size of master keys and subkeys.
const KeySize = 32

// NewAEAD returns the AEAD named name under key (32 bytes).
func NewAEAD(name string, key []byte) (cipher.AEAD, error) {
	switch name {
	case CipherXChaCha20Poly1305:
		return chacha20poly1305.NewX(key)
	case CipherAES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	}
	return nil, fmt.Errorf("unknown cipher %q (known: %s, %s)", name, CipherXChaCha20Poly1305, CipherAES256GCM)
}

// NewMaster returns a random master key.
func NewMaster() []byte {
	m := make([]byte, KeySize)
	Random(m)
	return m
}

// Random fills b from crypto/rand, which is documented never to fail.
func Random(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
}

// Subkey derives the subkey labelled label from master (HKDF-SHA256 with
// label as info). Callers prefix labels with their format's name and
// version, so that no two uses share a key.
func Subkey(master []byte, label string) ([]byte, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("master key is %d bytes, not %d", len(master), KeySize)
	}
	return hkdf.Key(sha256.New, master, nil, label, KeySize)
}

// SealParts appends to dst a random nonce and the AEAD sealing of the
// concatenated parts, bound to ad. The plaintext is assembled in dst's
// spare capacity and sealed in place: give dst room for nonce, parts
// and aead.Overhead() to avoid copies.
func SealParts(aead cipher.AEAD, dst, ad []byte, parts ...[]byte) []byte {
	start := len(dst)
	ns := aead.NonceSize()
	dst = append(dst, make([]byte, ns)...)
	Random(dst[start : start+ns])
	pt := dst[len(dst):len(dst)]
	for _, p := range parts {
		pt = append(pt, p...)
	}
	return aead.Seal(dst, dst[start:start+ns], pt, ad)
}

// ErrOpen: sealed bytes did not open (changed, truncated, swapped, bound
// to other associated data, or sealed under another key).
var ErrOpen = errors.New("authentication failed (changed, truncated, renamed, swapped or sealed under another key)")

// Open opens nonce|ciphertext made by SealParts with the same ad,
// appending the plaintext to dst.
func Open(aead cipher.AEAD, dst, sealed, ad []byte) ([]byte, error) {
	ns := aead.NonceSize()
	if len(sealed) < ns+aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a nonce and tag", ErrOpen, len(sealed))
	}
	out, err := aead.Open(dst, sealed[:ns], sealed[ns:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// Overhead is what SealParts adds to a plaintext.
func Overhead(aead cipher.AEAD) int { return aead.NonceSize() + aead.Overhead() }

// KeyedHash is keyed BLAKE3-256 of h under key: names objects by content
// without showing content hashes.
func KeyedHash(key *[KeySize]byte, h []byte) [32]byte {
	hs, _ := blake3.NewKeyed(key[:]) // the key is 32 bytes: no error
	hs.Write(h)
	var out [32]byte
	hs.Sum(out[:0])
	return out
}
