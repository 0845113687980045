package cas

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/backend/dump/internal/durable"
)

// CommitStaged is Commit for a batch that may be incomplete: it publishes
// the objects that were staged completely (each was verified when it was
// put) and ignores claims that were never written. It returns the hashes
// it published. A received stream that breaks off uses it to keep what
// did arrive, so a re-run need not send it again; whether a commit is
// complete is the caller's check, made against the store afterwards.
func (b *Batch) CommitStaged() ([]Hash, error) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return nil, errors.New("cas: batch already finished")
	}
	b.done = true
	var staged []Hash
	for h, st := range b.state {
		if st == stateStaged {
			staged = append(staged, h)
		}
	}
	b.mu.Unlock()
	defer b.cleanup()
	if err := b.waitSynced(); err != nil {
		return nil, err
	}
	b.s.publishMu.Lock()
	defer b.s.publishMu.Unlock()
	var dirs []string
	var seen [256]bool
	for i, h := range staged {
		if err := os.Rename(b.stagedPath(h), b.s.path(h)); err != nil {
			_ = durable.SyncDirs(dirs, syncWorkers)
			return staged[:i], fmt.Errorf("publish object %s: %w", h, err)
		}
		if !seen[h[0]] {
			seen[h[0]] = true
			dirs = append(dirs, filepath.Dir(b.s.path(h)))
		}
	}
	return staged, durable.SyncDirs(dirs, syncWorkers)
}
