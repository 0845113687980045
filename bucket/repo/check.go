package repo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// CheckOptions say how much Check reads.
type CheckOptions struct {
	// ReadData opens blobs too: all of them, or a random DataPercent of
	// them when 0 < DataPercent < 100. Without it blobs are only listed.
	ReadData    bool
	DataPercent float64
	// Parallel bounds concurrent reads (default 4).
	Parallel int
}

// Problem is one object that failed a check.
type Problem struct {
	Object string
	Err    error
}

// CheckResult is what Check found.
type CheckResult struct {
	Objects   int // objects looked at
	Blobs     int // blobs listed
	BlobsRead int
	Problems  []Problem
}

// Err is nil when no problem was found, else a CorruptError naming the
// first bad object and counting the others.
func (c CheckResult) Err() error {
	if len(c.Problems) == 0 {
		return nil
	}
	p := c.Problems[0]
	err := p.Err
	if len(c.Problems) > 1 {
		err = fmt.Errorf("%v (and %d more bad objects)", err, len(c.Problems)-1)
	}
	var ce *CorruptError
	if errors.As(p.Err, &ce) && len(c.Problems) == 1 {
		return p.Err
	}
	return &CorruptError{Name: p.Object, Err: err}
}

// Check opens every object but blobs (keys, locks, records, refs) and
// lists blobs, checking their names; with ReadData it opens blobs too and
// checks them against their IDs. Bad objects are Problems, never fatal;
// the error is for a check that could not run (the store unreachable).
func (r *Repo) Check(ctx context.Context, o CheckOptions) (CheckResult, error) {
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	var (
		mu  sync.Mutex
		res CheckResult
	)
	bad := func(name string, err error) {
		mu.Lock()
		res.Problems = append(res.Problems, Problem{Object: name, Err: err})
		mu.Unlock()
	}
	// Reads run in parallel; errors other than a bad object stop the check.
	var (
		wg      sync.WaitGroup
		sem     = make(chan struct{}, o.Parallel)
		fatalMu sync.Mutex
		fatal   error
	)
	run := func(name string, f func() error) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := f()
			var ce *CorruptError
			switch {
			case err == nil, errors.Is(err, dotmesh.ErrNotFound):
				// Gone since the listing: an unlock, a ref's old version.
			case errors.As(err, &ce), errors.Is(err, dotmesh.ErrCorrupt):
				bad(name, err)
			default:
				fatalMu.Lock()
				if fatal == nil {
					fatal = err
				}
				fatalMu.Unlock()
			}
		}()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err := r.store.List(ctx, "", func(oi bucket.ObjectInfo) error {
		res.Objects++
		name := oi.Name
		switch {
		case name == configName:
			// Checked by Open.
		case strings.HasPrefix(name, keysDir):
			run(name, func() error {
				b, err := readSmall(ctx, r.store, name, maxKeySize)
				if err == nil {
					if _, err = parseKeyFile(b); err != nil {
						err = corrupt(name, err)
					}
				}
				return err
			})
		case strings.HasPrefix(name, locksDir):
			run(name, func() error { _, err := r.readLock(ctx, name); return err })
		case strings.HasPrefix(name, recordsDir):
			kind, _, _ := strings.Cut(strings.TrimPrefix(name, recordsDir), "/")
			if validKind(kind) != nil {
				bad(name, corrupt(name, errors.New("not a record's name")))
				return nil
			}
			if _, err := r.parseRecordName(kind, name); err != nil {
				bad(name, err)
				return nil
			}
			run(name, func() error { _, err := r.get(ctx, kindRecord, name); return err })
		case strings.HasPrefix(name, refsDir):
			tok, err := parseRefObject(name)
			if err == nil {
				if _, err = r.codec.untoken("ref", tok); err != nil {
					err = corrupt(name, err)
				}
			}
			if err != nil {
				bad(name, err)
				return nil
			}
			run(name, func() error { _, err := r.get(ctx, kindRef, name); return err })
		case strings.HasPrefix(name, dataDir):
			id, err := ParseBlobObject(name)
			if err != nil {
				bad(name, corrupt(name, err))
				return nil
			}
			res.Blobs++
			if !o.ReadData || o.DataPercent > 0 && o.DataPercent < 100 && rand.Float64()*100 >= o.DataPercent {
				return nil
			}
			mu.Lock()
			res.BlobsRead++
			mu.Unlock()
			run(name, func() error { _, err := r.GetBlob(ctx, id); return err })
		default:
			bad(name, corrupt(name, errors.New("is no object of a repository")))
		}
		fatalMu.Lock()
		defer fatalMu.Unlock()
		return fatal
	})
	wg.Wait()
	if err == nil {
		err = fatal
	}
	return res, err
}
