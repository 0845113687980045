package seal

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// KDF names.
const (
	KDFArgon2id = "argon2id"
	KDFScrypt   = "scrypt"
)

// KDFParams says how a slot derives its key from a password. The zero
// value means DefaultKDF.
type KDFParams struct {
	Name string `json:"name"` // KDFArgon2id or KDFScrypt
	// Argon2id: passes, memory in KiB, lanes.
	Time    uint32 `json:"time,omitempty"`
	Memory  uint32 `json:"memory,omitempty"`
	Threads uint8  `json:"threads,omitempty"`
	// scrypt: N (a power of two), r, p.
	N int `json:"n,omitempty"`
	R int `json:"r,omitempty"`
	P int `json:"p,omitempty"`
}

// DefaultKDF is Argon2id with 19 MiB, 2 passes and 1 lane: OWASP's
// first recommended minimum for password storage. A clone onto a fresh
// node derives a key before it fetches anything, so this is on its
// critical path: measured here (2 cores) 0.09 s against 0.66 s for the
// earlier default (64 MiB, 3 passes, 4 lanes, RFC 9106's second
// recommendation; restic's scrypt takes about 0.1 s). Keys made with
// other parameters keep them (a slot stores its own) and open as before;
// `dm remote key add` on an old repository makes its new key with these.
var DefaultKDF = KDFParams{Name: KDFArgon2id, Time: 2, Memory: 19 << 10, Threads: 1}

// Bounds of the parameters a slot may ask for: a slot comes from storage
// others may write, and must not make opening spend unbounded memory or
// time.
const (
	maxArgonMemory = 1 << 20 // KiB: 1 GiB
	maxArgonTime   = 64
	maxScryptLogN  = 24
	// SaltLen is the length of a slot's salt.
	SaltLen = 32
)

// OrDefault returns p, or DefaultKDF for the zero value.
func (p KDFParams) OrDefault() KDFParams {
	if p == (KDFParams{}) {
		return DefaultKDF
	}
	return p
}

// Validate checks that p is a known KDF with parameters in bounds.
func (p KDFParams) Validate() error {
	switch p.Name {
	case KDFArgon2id:
		if p.Time < 1 || p.Time > maxArgonTime || p.Memory < 8*uint32(max(p.Threads, 1)) || p.Memory > maxArgonMemory || p.Threads < 1 || p.N != 0 || p.R != 0 || p.P != 0 {
			return fmt.Errorf("argon2id parameters time %d, memory %d KiB, threads %d are out of range (time 1..%d, memory 8×threads..%d KiB, threads >= 1)", p.Time, p.Memory, p.Threads, maxArgonTime, maxArgonMemory)
		}
	case KDFScrypt:
		if p.N < 2 || p.N&(p.N-1) != 0 || p.N > 1<<maxScryptLogN || p.R < 1 || p.P < 1 || p.R*p.P >= 1<<20 || p.Time != 0 || p.Memory != 0 || p.Threads != 0 {
			return fmt.Errorf("scrypt parameters N %d, r %d, p %d are out of range (N a power of two up to 2^%d, r, p >= 1, r×p < 2^20)", p.N, p.R, p.P, maxScryptLogN)
		}
		if int64(128)*int64(p.R)*int64(p.N) > 1<<30 {
			return fmt.Errorf("scrypt parameters N %d, r %d need more than 1 GiB", p.N, p.R)
		}
	default:
		return fmt.Errorf("unknown KDF %q (known: %s, %s)", p.Name, KDFArgon2id, KDFScrypt)
	}
	return nil
}

// bigKDF is the memory (bytes) above which Derive returns the KDF's
// memory to the OS at once: otherwise it stays in the heap, and the
// garbage collector's goal grows by it for the next cycles.
const bigKDF = 16 << 20

// Derive derives a 32-byte key from password and salt.
func (p KDFParams) Derive(password, salt []byte) ([]byte, error) {
	var dk []byte
	var mem int64
	switch p.Name {
	case KDFArgon2id:
		mem = int64(p.Memory) << 10
		if mem >= bigKDF {
			prefault(mem)
		}
		dk = argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, 32)
	case KDFScrypt:
		var err error
		if dk, err = scrypt.Key(password, salt, p.N, p.R, p.P, 32); err != nil {
			return nil, err
		}
		mem = 128 * int64(p.R) * int64(p.N)
	default:
		return nil, p.Validate()
	}
	if mem >= bigKDF {
		debug.FreeOSMemory()
	}
	return dk, nil
}

// Slot is a key slot: the master key sealed under a key derived from a
// password. Its JSON is what a bucket repository's keys/ objects and an
// encrypted dump store's key file hold.
type Slot struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	KDF     KDFParams `json:"kdf"`
	Salt    []byte    `json:"salt"`
	// Sealed is the master key sealed with XChaCha20-Poly1305 under the
	// derived key: nonce | ciphertext | tag, bound to the slot's
	// associated data (its owner and name).
	Sealed []byte `json:"sealed"`
}

const sealedMasterLen = chacha20poly1305.NonceSizeX + KeySize + chacha20poly1305.Overhead

// NewSlot seals master under password with params (validated), bound to
// ad.
func NewSlot(master, password []byte, params KDFParams, ad []byte, version int, now time.Time) (Slot, error) {
	if err := params.Validate(); err != nil {
		return Slot{}, err
	}
	s := Slot{Version: version, Created: now.UTC(), KDF: params, Salt: make([]byte, SaltLen)}
	Random(s.Salt)
	dk, err := params.Derive(password, s.Salt)
	if err != nil {
		return Slot{}, err
	}
	aead, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return Slot{}, err
	}
	s.Sealed = SealParts(aead, make([]byte, 0, sealedMasterLen), ad, master)
	derived.put(s.cacheKey(password), dk) // opening it next derives nothing
	return s, nil
}

// ParseSlot decodes and checks a slot of format version.
func ParseSlot(b []byte, version int) (Slot, error) {
	var s Slot
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("key is not JSON: %v", err)
	}
	if s.Version != version {
		return s, fmt.Errorf("key has format version %d; this dotmesh knows version %d", s.Version, version)
	}
	if err := s.KDF.Validate(); err != nil {
		return s, fmt.Errorf("key: %v", err)
	}
	if len(s.Salt) != SaltLen {
		return s, fmt.Errorf("key salt is %d bytes, not %d", len(s.Salt), SaltLen)
	}
	if len(s.Sealed) != sealedMasterLen {
		return s, fmt.Errorf("key's sealed master key is %d bytes, not %d", len(s.Sealed), sealedMasterLen)
	}
	return s, nil
}

// Unseal returns the master key if password opens s with ad. A key it
// derived for a password that opened is cached (see the package doc).
func (s Slot) Unseal(password, ad []byte) ([]byte, bool) {
	ck := s.cacheKey(password)
	dk, cached := derived.get(ck)
	if !cached {
		var err error
		if dk, err = s.KDF.Derive(password, s.Salt); err != nil {
			return nil, false
		}
	}
	aead, err := chacha20poly1305.NewX(dk)
	if err != nil {
		return nil, false
	}
	master, err := Open(aead, nil, s.Sealed, ad)
	if err != nil || len(master) != KeySize {
		return nil, false
	}
	if !cached {
		derived.put(ck, dk)
	}
	return master, true
}

// cacheKey names the derived key of s and password: SHA-256 of the
// KDF, salt, sealed key and password, each length-prefixed. The salt is
// random per slot, so the key is one slot's and one password's.
func (s Slot) cacheKey(password []byte) [32]byte {
	h := sha256.New()
	p, _ := json.Marshal(s.KDF) // plain struct: cannot fail
	for _, b := range [][]byte{p, s.Salt, s.Sealed, password} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// keyCache holds derived keys for the process's life, bounded.
type keyCache struct {
	mu sync.Mutex
	m  map[[32]byte][]byte
}

const maxCachedKeys = 64

var derived = &keyCache{m: map[[32]byte][]byte{}}

func (c *keyCache) get(k [32]byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dk, ok := c.m[k]
	return dk, ok
}

func (c *keyCache) put(k [32]byte, dk []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedKeys {
		for old := range c.m { // drop one at random
			delete(c.m, old)
			break
		}
	}
	c.m[k] = dk
}
