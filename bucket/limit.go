package bucket

import (
	"context"
	"io"
	"sync"
)

// WithLimit lets at most n operations of s run at once (n < 1: one); the
// others wait their turn, or until their ctx ends. A Get holds its turn
// until its reader is closed. A List takes no turn, so that its fn may
// use the store.
func WithLimit(s Store, n int) Store {
	return &limitStore{s: s, sem: make(chan struct{}, max(n, 1))}
}

type limitStore struct {
	s   Store
	sem chan struct{}
}

func (l *limitStore) acquire(ctx context.Context, op, name string) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &Error{Op: op, Name: name, Location: l.s.Location(), Err: ctx.Err()}
	}
}

func (l *limitStore) release() { <-l.sem }

func (l *limitStore) Location() string { return l.s.Location() }
func (l *limitStore) Close() error     { return l.s.Close() }

func (l *limitStore) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := l.acquire(ctx, "put", name); err != nil {
		return err
	}
	defer l.release()
	return l.s.Put(ctx, name, r, size)
}

func (l *limitStore) Create(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := l.acquire(ctx, "create", name); err != nil {
		return err
	}
	defer l.release()
	return l.s.Create(ctx, name, r, size)
}

func (l *limitStore) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := l.acquire(ctx, "get", name); err != nil {
		return nil, err
	}
	rc, err := l.s.Get(ctx, name, off, length)
	if err != nil {
		l.release()
		return nil, err
	}
	return &releasingReader{ReadCloser: rc, release: l.release}, nil
}

// releasingReader gives the turn back on the first Close.
type releasingReader struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releasingReader) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}

func (l *limitStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := l.acquire(ctx, "stat", name); err != nil {
		return ObjectInfo{}, err
	}
	defer l.release()
	return l.s.Stat(ctx, name)
}

func (l *limitStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	return l.s.List(ctx, prefix, fn)
}

func (l *limitStore) Delete(ctx context.Context, name string) error {
	if err := l.acquire(ctx, "delete", name); err != nil {
		return err
	}
	defer l.release()
	return l.s.Delete(ctx, name)
}
