package dotmesh

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scratchCounter makes scratch "copies" (directories) and counts what is
// made and cleaned up.
type scratchCounter struct {
	t       *testing.T
	mu      sync.Mutex
	made    int
	cleaned map[string]int
}

func (c *scratchCounter) mk() (string, func(), error) {
	dir := c.t.TempDir()
	c.mu.Lock()
	c.made++
	c.mu.Unlock()
	return dir, func() {
		c.mu.Lock()
		c.cleaned[dir]++
		c.mu.Unlock()
	}, nil
}

func (c *scratchCounter) counts() (made, cleaned int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.cleaned {
		require.Equal(c.t, 1, n, "each copy is cleaned up once")
		cleaned += n
	}
	return c.made, cleaned
}

func newScratchCounter(t *testing.T) *scratchCounter {
	return &scratchCounter{t: t, cleaned: map[string]int{}}
}

// TestScratchTreesReuse: a commit's copy is made once, shared by readers
// at once and after, and cleaned up once when idle.
func TestScratchTreesReuse(t *testing.T) {
	c := newScratchCounter(t)
	s := &scratchTrees{idle: 50 * time.Millisecond}
	k := scratchKey{dot: "d1", commit: "c1"}
	dir1, rel1, kept, err := s.acquire(k, c.mk)
	require.NoError(t, err)
	require.False(t, kept)
	dir2, rel2, kept, err := s.acquire(k, c.mk)
	require.NoError(t, err)
	require.True(t, kept, "a second reader shares the copy")
	require.Equal(t, dir1, dir2)
	rel1()
	rel2()
	_, rel3, kept, err := s.acquire(k, c.mk)
	require.NoError(t, err)
	require.True(t, kept, "a copy released just now is reused")
	rel3()
	made, cleaned := c.counts()
	require.Equal(t, 1, made)
	require.Equal(t, 0, cleaned, "kept while not idle long")
	require.Eventually(t, func() bool { _, n := c.counts(); return n == 1 }, 5*time.Second, 10*time.Millisecond, "an idle copy is cleaned up")
	_, rel4, kept, err := s.acquire(k, c.mk)
	require.NoError(t, err)
	require.False(t, kept, "after expiry a new copy is made")
	rel4()
	s.drop("", true, true)
	made, cleaned = c.counts()
	require.Equal(t, 2, made)
	require.Equal(t, 2, cleaned, "Close cleans up the idle copy")
}

// TestScratchTreesDrop: dropping a dot's copies cleans the idle ones at
// once and those in use when their reader is done; other dots' stay; after
// close nothing is kept.
func TestScratchTreesDrop(t *testing.T) {
	c := newScratchCounter(t)
	s := &scratchTrees{idle: time.Hour}
	_, relA, _, err := s.acquire(scratchKey{"d1", "a"}, c.mk)
	require.NoError(t, err)
	_, relB, _, err := s.acquire(scratchKey{"d1", "b"}, c.mk)
	require.NoError(t, err)
	_, relC, _, err := s.acquire(scratchKey{"d2", "c"}, c.mk)
	require.NoError(t, err)
	relA()
	relC()
	s.drop("d1", false, false)
	_, cleaned := c.counts()
	require.Equal(t, 1, cleaned, "d1's idle copy goes at once, the one in use stays")
	_, relB2, kept, err := s.acquire(scratchKey{"d1", "b"}, c.mk)
	require.NoError(t, err)
	require.False(t, kept, "a dropped copy is never handed out again")
	relB2()
	relB()
	_, cleaned = c.counts()
	require.Equal(t, 2, cleaned, "the dropped copy goes when its reader is done")
	_, relC2, kept, err := s.acquire(scratchKey{"d2", "c"}, c.mk)
	require.NoError(t, err)
	require.True(t, kept, "another dot's copy stays")
	relC2()

	s.drop("", true, true)
	made, cleaned := c.counts()
	require.Equal(t, made, cleaned, "close cleans up every copy")
	_, rel, kept, err := s.acquire(scratchKey{"d3", "x"}, c.mk)
	require.NoError(t, err)
	require.False(t, kept)
	rel()
	made, cleaned = c.counts()
	require.Equal(t, made, cleaned, "after close a copy goes with its reader")
}

// TestScratchTreesLimit: beyond the limit the least recently used idle
// copies go; copies in use are never cleaned up under their reader.
func TestScratchTreesLimit(t *testing.T) {
	c := newScratchCounter(t)
	s := &scratchTrees{idle: time.Hour, max: 2}
	rels := map[CommitID]func(){}
	for _, id := range []CommitID{"a", "b", "c"} {
		_, rel, _, err := s.acquire(scratchKey{"d", id}, c.mk)
		require.NoError(t, err)
		rels[id] = rel
		time.Sleep(2 * time.Millisecond)
	}
	_, cleaned := c.counts()
	require.Equal(t, 0, cleaned, "all three in use")
	rels["a"]()
	rels["b"]()
	_, relD, _, err := s.acquire(scratchKey{"d", "d"}, c.mk)
	require.NoError(t, err)
	_, cleaned = c.counts()
	require.Equal(t, 2, cleaned, "the two idle copies went to make room")
	_, relC, kept, err := s.acquire(scratchKey{"d", "c"}, c.mk)
	require.NoError(t, err)
	require.True(t, kept, "the copy in use stayed")
	relC()
	rels["c"]()
	relD()
	s.drop("", true, true)
	made, cleaned := c.counts()
	require.Equal(t, made, cleaned)
}

// TestScratchTreesForget: a broken copy is forgotten and cleaned up; the
// next reader gets a new one.
func TestScratchTreesForget(t *testing.T) {
	c := newScratchCounter(t)
	s := &scratchTrees{idle: time.Hour}
	k := scratchKey{"d", "a"}
	dir, rel, _, err := s.acquire(k, c.mk)
	require.NoError(t, err)
	rel()
	s.forget(k, dir)
	_, cleaned := c.counts()
	require.Equal(t, 1, cleaned)
	dir2, rel2, kept, err := s.acquire(k, c.mk)
	require.NoError(t, err)
	require.False(t, kept)
	require.NotEqual(t, dir, dir2)
	s.forget(k, "elsewhere") // another copy's directory: this one stays
	rel2()
	_, rel3, kept, err := s.acquire(k, c.mk)
	require.NoError(t, err)
	require.True(t, kept)
	rel3()
	s.drop("", true, true)
	made, cleaned := c.counts()
	require.Equal(t, made, cleaned)
}
