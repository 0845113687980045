package repo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/dotmesh-io/dotmesh/internal/seal"
)

// FormatVersion is the version of the repository format this package
// writes and reads.
const FormatVersion = 1

const configName = "config"

// Chunker is how writers cut dots into blobs, recorded so that every
// writer cuts alike and deduplicates against the others. The defaults are
// the dump backend's file chunks (its gear-hash CDC).
type Chunker struct {
	Name    string `json:"name"` // "gear-v1": the dump backend's chunker
	Min     int    `json:"min"`
	Max     int    `json:"max"`
	AvgBits int    `json:"avg_bits"`
}

// DefaultChunker is the dump backend's file chunking.
var DefaultChunker = Chunker{Name: "gear-v1", Min: 256 << 10, Max: 4 << 20, AvgBits: 18}

// Config is a repository's config object.
type Config struct {
	Version   int     `json:"version"`
	ID        string  `json:"id"` // 32 hex digits, random
	Encrypted bool    `json:"encrypted"`
	Cipher    string  `json:"cipher,omitempty"` // empty when not encrypted
	Chunker   Chunker `json:"chunker"`
	// MAC is HMAC-SHA256 under the "config" subkey of the config with an
	// empty MAC, so that a changed config is noticed once a key opened.
	MAC string `json:"mac,omitempty"`
}

func (c Config) canonical() []byte {
	c.MAC = ""
	b, _ := json.Marshal(c) // plain struct: cannot fail
	return b
}

func (c Config) mac(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(c.canonical())
	return hex.EncodeToString(m.Sum(nil))
}

// checkMAC verifies the config against the "config" subkey.
func (c Config) checkMAC(key []byte) bool {
	want := c.mac(key)
	return hmac.Equal([]byte(want), []byte(c.MAC))
}

// parseConfig decodes and checks a config object.
func parseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("config is not JSON: %v", err)
	}
	if c.Version != FormatVersion {
		return c, fmt.Errorf("config has format version %d; this dotmesh knows version %d", c.Version, FormatVersion)
	}
	if len(c.ID) != 32 {
		return c, fmt.Errorf("config id %.40q is not 32 hex digits", c.ID)
	}
	if _, err := hex.DecodeString(c.ID); err != nil {
		return c, fmt.Errorf("config id %.40q is not hex", c.ID)
	}
	if c.Encrypted {
		if _, err := seal.NewAEAD(c.Cipher, make([]byte, 32)); err != nil {
			return c, fmt.Errorf("config: %v", err)
		}
		if len(c.MAC) != 64 {
			return c, fmt.Errorf("config of an encrypted repository has no MAC")
		}
	} else if c.Cipher != "" || c.MAC != "" {
		return c, fmt.Errorf("config of a repository without encryption names a cipher or MAC")
	}
	if err := c.Chunker.validate(); err != nil {
		return c, fmt.Errorf("config: %v", err)
	}
	return c, nil
}

func (ch Chunker) validate() error {
	if ch.Name == "" || len(ch.Name) > 32 {
		return fmt.Errorf("chunker has no name")
	}
	if ch.Min < 1 || ch.Max < ch.Min || ch.Max > MaxObjectSize || ch.AvgBits < 1 || ch.AvgBits > 30 {
		return fmt.Errorf("chunker sizes min %d, max %d, avg_bits %d are out of range (1 <= min <= max <= %d, 1 <= avg_bits <= 30)", ch.Min, ch.Max, ch.AvgBits, MaxObjectSize)
	}
	return nil
}
