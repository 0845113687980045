package bucket

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// WithLogging logs every operation of s to log: done ones at DEBUG (with
// size and duration; a Get when its reader is closed), failed ones at
// WARN. A missing object (Get, Stat) and a lost Create are answers, not
// failures: they log at DEBUG.
func WithLogging(s Store, log *slog.Logger) Store {
	return &logStore{s: s, log: log}
}

type logStore struct {
	s   Store
	log *slog.Logger
}

func (l *logStore) Location() string { return l.s.Location() }
func (l *logStore) Close() error     { return l.s.Close() }

func (l *logStore) done(ctx context.Context, op, name string, start time.Time, err error, attrs ...any) {
	attrs = append(attrs, "op", op, "object", name, "store", l.s.Location(), "took", time.Since(start))
	level := slog.LevelDebug
	if err != nil {
		attrs = append(attrs, "err", err)
		if !errors.Is(err, dotmesh.ErrNotFound) && !errors.Is(err, dotmesh.ErrAlreadyExists) {
			level = slog.LevelWarn
		}
	}
	l.log.Log(ctx, level, "bucket: "+op, attrs...)
}

func (l *logStore) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	start := time.Now()
	err := l.s.Put(ctx, name, r, size)
	l.done(ctx, "put", name, start, err, "size", size)
	return err
}

func (l *logStore) Create(ctx context.Context, name string, r io.Reader, size int64) error {
	start := time.Now()
	err := l.s.Create(ctx, name, r, size)
	l.done(ctx, "create", name, start, err, "size", size)
	return err
}

func (l *logStore) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := l.s.Get(ctx, name, off, length)
	if err != nil {
		l.done(ctx, "get", name, start, err, "offset", off, "length", length)
		return nil, err
	}
	return &loggingReader{ReadCloser: rc, ctx: ctx, l: l, name: name, start: start, off: off}, nil
}

// loggingReader logs its Get when closed, with the bytes read and the
// first read error.
type loggingReader struct {
	io.ReadCloser
	ctx    context.Context
	l      *logStore
	name   string
	start  time.Time
	off, n int64
	err    error
	closed bool
}

func (r *loggingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n += int64(n)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

func (r *loggingReader) Close() error {
	err := r.ReadCloser.Close()
	if !r.closed {
		r.closed = true
		r.l.done(r.ctx, "get", r.name, r.start, r.err, "offset", r.off, "read", r.n)
	}
	return err
}

func (l *logStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	start := time.Now()
	oi, err := l.s.Stat(ctx, name)
	l.done(ctx, "stat", name, start, err)
	return oi, err
}

func (l *logStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	start := time.Now()
	n := 0
	err := l.s.List(ctx, prefix, func(oi ObjectInfo) error { n++; return fn(oi) })
	l.done(ctx, "list", prefix, start, err, "objects", n)
	return err
}

func (l *logStore) Delete(ctx context.Context, name string) error {
	start := time.Now()
	err := l.s.Delete(ctx, name)
	l.done(ctx, "delete", name, start, err)
	return err
}
