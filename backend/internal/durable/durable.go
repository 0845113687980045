// Package durable makes files and directory entries durable: with
// per-file fsyncs run on a background pool, or with one syncfs (SyncFS)
// when there are many files. syncfs is one call, but it also flushes
// every other dirty byte on the filesystem (a freshly copied working
// tree, other programs' writes), which can cost seconds that are not
// ours to spend; per-file fsyncs cost a journal commit every few files,
// which for many small files costs more (a restore of 500,000 files
// spent most of its 81 s in them).
package durable

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// SyncFS makes everything written to the filesystem that holds dir
// durable (syncfs(2)): file contents, inodes and directory entries.
func SyncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("make %s durable: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("make %s durable: syncfs: %w", dir, err)
	}
	return nil
}

// Syncer fsyncs and closes files in the background. Add hands over an
// open file; Wait returns once every file added is durable and closed.
type Syncer struct {
	files chan *os.File
	wg    sync.WaitGroup

	mu  sync.Mutex
	err error
}

// NewSyncer starts workers goroutines. Concurrent fsyncs let the
// filesystem fold many of them into one journal commit; queue bounds how
// many files wait (and stay open), which also throttles writers that
// outrun the disk.
func NewSyncer(workers, queue int) *Syncer {
	s := &Syncer{files: make(chan *os.File, queue)}
	for i := 0; i < workers; i++ {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for f := range s.files {
				err := f.Sync()
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					s.fail(fmt.Errorf("make %s durable: %w", f.Name(), err))
				}
			}
		}()
	}
	return s
}

func (s *Syncer) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// Add queues f to be synced and closed; the Syncer owns f from now on.
func (s *Syncer) Add(f *os.File) { s.files <- f }

// Wait stops the Syncer after the queued files and reports the first
// failure. It must be called exactly once.
func (s *Syncer) Wait() error {
	close(s.files)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// SyncDirs fsyncs directories in parallel, so that entries created,
// renamed or removed in them survive a power cut.
func SyncDirs(dirs []string, workers int) error {
	s := NewSyncer(workers, len(dirs))
	var errs []error
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("make %s durable: %w", d, err))
			continue
		}
		s.Add(f)
	}
	if err := s.Wait(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
