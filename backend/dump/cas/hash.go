package cas

import (
	"encoding/hex"
	"fmt"

	"github.com/zeebo/blake3"
)

// HashSize is the length of an object key in bytes.
const HashSize = 32

// Hash is the BLAKE3-256 digest of an object's plaintext, and its key.
type Hash [HashSize]byte

// Sum returns the key of data.
func Sum(data []byte) Hash { return blake3.Sum256(data) }

// String returns the hash as 64 lowercase hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 12 hex digits, for log lines.
func (h Hash) Short() string { return hex.EncodeToString(h[:6]) }

// ParseHash parses 64 lowercase hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("object hash %q must be %d hex digits", s, 2*HashSize)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return h, fmt.Errorf("object hash %q must be lowercase hex", s)
		}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("object hash %q: %w", s, err)
	}
	return h, nil
}
