// Package bucket is object storage for remotes: a Store is a flat
// namespace of objects under one bucket and prefix (an S3 bucket, or a
// local directory), opened by URL through a registry of kinds, and
// wrapped by decorators (retries, limits, logging). Stores classify their
// own errors with the dotmesh sentinels: ErrNotFound for a missing
// object, ErrAlreadyExists for a conditional create that lost,
// ErrPermissionDenied for refused credentials, ErrUnavailable for what a
// retry may cure, ErrCorrupt for a short or damaged read.
//
// What goes into a Store (encrypted or not) is package bucket/repo's
// business; a Store moves bytes.
package bucket

import (
	"context"
	"io"
	"time"
)

// Store is a flat namespace of objects. Names are slash-separated
// relative paths of [A-Za-z0-9._/-] (ValidateName). An object is written
// whole: readers see the old object or the complete new one, never a
// part.
type Store interface {
	// Location describes the store for messages, without credentials
	// ("s3://bucket/prefix at http://127.0.0.1:8333").
	Location() string
	// Put writes an object of size bytes from r, replacing any object of
	// that name.
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	// Create writes an object only if none of that name exists:
	// ErrAlreadyExists otherwise. Stores that cannot do this atomically
	// (an S3 server without conditional writes) return ErrNotSupported,
	// and callers serialise with locks instead.
	Create(ctx context.Context, name string, r io.Reader, size int64) error
	// Get reads length bytes from offset off (length < 0: to the end).
	// ErrNotFound for a missing object.
	Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)
	// Stat describes an object; ErrNotFound when missing.
	Stat(ctx context.Context, name string) (ObjectInfo, error)
	// List calls fn for every object whose name starts with prefix, in
	// name order; an error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// Close releases the store's resources.
	Close() error
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Name     string
	Size     int64
	Modified time.Time
}

// Config is what opening a store needs beyond its URL. The library reads
// no environment: frontends fill this (S3 credentials the way S3 tools
// find them: see package bucket/s3's DefaultCredentials).
type Config struct {
	// Endpoint is the S3 server's URL ("http://127.0.0.1:8333"); empty
	// for AWS.
	Endpoint string
	// Region is the S3 region; empty means the kind's default.
	Region string
	// AccessKey, SecretKey and SessionToken are S3 credentials; empty
	// for anonymous access.
	AccessKey, SecretKey, SessionToken string
}
