package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// RetryOptions tune WithRetry; zero fields take the defaults.
type RetryOptions struct {
	// Attempts is how many times an operation is tried (default 6).
	Attempts int
	// Base is the first pause (default 250ms); each retry doubles it up
	// to Max (default 10s), and a random half of it is jitter.
	Base, Max time.Duration
	// MaxBuffer: a Put or Create whose reader cannot seek is buffered in
	// memory to be retried when its size is at most this (default 16
	// MiB); a bigger one is tried once. Pass an io.ReadSeeker (a file, a
	// bytes.Reader) to have any size retried without a buffer.
	MaxBuffer int64
	// Logger gets each retry at WARN; nil logs nothing.
	Logger *slog.Logger
}

// WithRetry retries operations of s that fail with dotmesh.ErrUnavailable
// (what a retry may cure: a server away, a timeout, a 5xx), with
// exponential backoff and jitter, at most Attempts times and never past
// ctx. Other errors return at once. Reading a Get's body is not retried
// (the caller holds it); a List that fails midway resumes after the last
// object it delivered. A Create retried after an attempt that may have
// reached the server can find its own object: its ErrAlreadyExists then
// says so.
func WithRetry(s Store, o RetryOptions) Store {
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.Base <= 0 {
		o.Base = 250 * time.Millisecond
	}
	if o.Max <= 0 {
		o.Max = 10 * time.Second
	}
	if o.MaxBuffer <= 0 {
		o.MaxBuffer = 16 << 20
	}
	return &retryStore{s: s, o: o}
}

type retryStore struct {
	s Store
	o RetryOptions
}

func (r *retryStore) Location() string { return r.s.Location() }
func (r *retryStore) Close() error     { return r.s.Close() }

// do runs f until it succeeds, fails for good, or attempts or ctx run out.
// rewind, when set, makes the next attempt's input ready (false: it
// cannot, so no retry).
func (r *retryStore) do(ctx context.Context, op, name string, rewind func() bool, f func() error) error {
	var err error
	for i := 0; ; i++ {
		err = f()
		if err == nil || !errors.Is(err, dotmesh.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		if i+1 >= r.o.Attempts || rewind != nil && !rewind() {
			return fmt.Errorf("%w (gave up after %d attempts)", err, i+1)
		}
		d := min(r.o.Max, r.o.Base<<min(i, 30))
		d = d/2 + rand.N(d/2+1)
		if r.o.Logger != nil {
			r.o.Logger.Warn("bucket: retrying", "op", op, "object", name, "store", r.s.Location(), "attempt", i+1, "pause", d, "err", err)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// replayable makes rd readable again for each attempt: a seeker is
// rewound, a small reader buffered; rewind reports false for a reader
// that cannot be read again.
func (r *retryStore) replayable(rd io.Reader, size int64) (io.Reader, func() bool, error) {
	if sk, ok := rd.(io.ReadSeeker); ok {
		if pos, err := sk.Seek(0, io.SeekCurrent); err == nil {
			return sk, func() bool { _, err := sk.Seek(pos, io.SeekStart); return err == nil }, nil
		}
	}
	if size < 0 || size > r.o.MaxBuffer {
		return rd, func() bool { return false }, nil
	}
	// One byte more than size lets the store see a reader that is too long.
	buf, err := io.ReadAll(io.LimitReader(rd, size+1))
	if err != nil {
		return nil, nil, err
	}
	br := bytes.NewReader(buf)
	return br, func() bool { br.Reset(buf); return true }, nil
}

func (r *retryStore) Put(ctx context.Context, name string, rd io.Reader, size int64) error {
	rd, rewind, err := r.replayable(rd, size)
	if err != nil {
		return &Error{Op: "put", Name: name, Location: r.s.Location(), Err: err}
	}
	return r.do(ctx, "put", name, rewind, func() error { return r.s.Put(ctx, name, rd, size) })
}

func (r *retryStore) Create(ctx context.Context, name string, rd io.Reader, size int64) error {
	rd, rewind, err := r.replayable(rd, size)
	if err != nil {
		return &Error{Op: "create", Name: name, Location: r.s.Location(), Err: err}
	}
	var failed error
	err = r.do(ctx, "create", name, rewind, func() error {
		err := r.s.Create(ctx, name, rd, size)
		if errors.Is(err, dotmesh.ErrUnavailable) && failed == nil {
			failed = err
		}
		return err
	})
	if failed != nil && errors.Is(err, dotmesh.ErrAlreadyExists) {
		return fmt.Errorf("%w (an earlier attempt failed and may have created it: %v)", err, failed)
	}
	return err
}

func (r *retryStore) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, "get", name, nil, func() (err error) {
		rc, err = r.s.Get(ctx, name, off, length)
		return err
	})
	return rc, err
}

func (r *retryStore) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	var oi ObjectInfo
	err := r.do(ctx, "stat", name, nil, func() (err error) {
		oi, err = r.s.Stat(ctx, name)
		return err
	})
	return oi, err
}

func (r *retryStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	var last string
	delivered := false
	var fnErr error
	err := r.do(ctx, "list", prefix, nil, func() error {
		err := r.s.List(ctx, prefix, func(oi ObjectInfo) error {
			if delivered && oi.Name <= last {
				return nil // delivered by an earlier attempt
			}
			if err := fn(oi); err != nil {
				fnErr = err
				return err
			}
			last, delivered = oi.Name, true
			return nil
		})
		if fnErr != nil {
			return nil // stops the retries; fnErr is returned below
		}
		return err
	})
	if fnErr != nil {
		return fnErr // the caller's own error, never retried
	}
	return err
}

func (r *retryStore) Delete(ctx context.Context, name string) error {
	return r.do(ctx, "delete", name, nil, func() error { return r.s.Delete(ctx, name) })
}
