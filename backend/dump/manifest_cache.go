package dump

import (
	"sync"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
)

// manifestCache keeps the last decoded commit manifests by root hash.
// One diff reads each side's manifest twice (CommitTree and
// DatabaseSubdots) and `dm diff`, `dm show` and the web pages ask for
// the same few commits in a row; decoding was most of their server
// time. Roots are content hashes, so an entry never goes stale; callers
// only read what they get. Bounded by entries, so a tree of a million
// files is not kept twice over.
type manifestCache struct {
	mu   sync.Mutex
	recs []*storedManifest // newest last
}

// manifestCacheEntries bounds the entries of all cached manifests.
const manifestCacheEntries = 200_000

// manifestCacheSize is how many manifests are kept: a diff's two sides.
const manifestCacheSize = 2

func (c *manifestCache) get(root cas.Hash) *storedManifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.recs {
		if m.Root == root {
			c.recs = append(append(c.recs[:i:i], c.recs[i+1:]...), m)
			return m
		}
	}
	return nil
}

func (c *manifestCache) put(m *storedManifest) {
	if len(m.Entries) > manifestCacheEntries/manifestCacheSize {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.recs {
		if o.Root == m.Root {
			return
		}
	}
	c.recs = append(c.recs, m)
	if len(c.recs) > manifestCacheSize {
		c.recs = append([]*storedManifest(nil), c.recs[len(c.recs)-manifestCacheSize:]...)
	}
}
