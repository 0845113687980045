// Package s3 is the S3 kind of bucket.Store ("s3://BUCKET[/PREFIX]"),
// through the minio-go client library (no signing of its own). Importing
// it registers the kind with bucket.Open.
//
// A custom endpoint (Config.Endpoint, e.g. SeaweedFS or Ceph on
// http://127.0.0.1:8333) is addressed path-style; AWS without an endpoint
// virtual-host style, region us-east-1 unless Config.Region says. Objects
// bigger than PartSize go up as multipart uploads of PartSize parts, one
// at a time through one buffer, which bounds a Put's memory to PartSize;
// S3 shows a multipart object only once it is complete. Create is a conditional write (If-None-Match: *) when the
// server honours it (tried once per store with a probe object under
// ".dotmesh-probe/"); on a server that does not, it returns
// dotmesh.ErrNotSupported. The client does not retry: wrap the store in
// bucket.WithRetry.
//
// Errors are *bucket.Error values wrapping the dotmesh sentinels:
// NoSuchKey and NoSuchBucket → ErrNotFound; AccessDenied,
// InvalidAccessKeyId, SignatureDoesNotMatch → ErrPermissionDenied; an
// unreachable server, a timeout, a 5xx or SlowDown → ErrUnavailable; a
// body shorter than the read asked for → ErrCorrupt.
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const (
	// PartSize is the part size of multipart uploads, the largest object
	// put in one request, and the buffer a Put holds.
	PartSize = 16 << 20
	// DefaultRegion is the region when Config.Region is empty.
	DefaultRegion = "us-east-1"
	// probePrefix holds the objects of the conditional-write probe; a
	// name part starting with a dot is no valid object name, so it never
	// meets the caller's objects and List skips it.
	probePrefix = ".dotmesh-probe/"
)

func init() {
	bucket.Register("s3", func(ctx context.Context, u bucket.URL, cfg bucket.Config) (bucket.Store, error) {
		return Open(ctx, u.Host, u.Path, cfg)
	})
}

// Store is an S3 bucket, or a prefix of one, as a bucket.Store.
type Store struct {
	core      minio.Core
	transport *http.Transport
	bucket    string
	prefix    string // "" or "PREFIX/"
	region    string
	location  string

	condMu sync.Mutex
	cond   int // 0 unknown, 1 conditional writes work, -1 they do not
}

var _ bucket.Store = (*Store)(nil)

// Open opens bucket bkt under prefix (no slashes at its ends; "" for the
// whole bucket). It sends no request: a missing bucket or wrong
// credentials show in the first operation.
func Open(_ context.Context, bkt, prefix string, cfg bucket.Config) (*Store, error) {
	loc := "s3://" + bkt
	if prefix != "" {
		loc += "/" + prefix
	}
	fail := func(err error) error { return &bucket.Error{Op: "open", Location: loc, Err: err} }
	if err := ValidateBucketName(bkt); err != nil {
		return nil, fail(err)
	}
	if prefix != "" {
		if err := bucket.ValidateName(prefix); err != nil {
			return nil, fail(fmt.Errorf("%w: the prefix is not a valid object name: %v", dotmesh.ErrInvalidName, err))
		}
	}
	host, secure, lookup := "s3.amazonaws.com", true, minio.BucketLookupAuto
	if cfg.Endpoint != "" {
		u, err := parseEndpoint(cfg.Endpoint)
		if err != nil {
			return nil, fail(err)
		}
		host, secure, lookup = u.Host, u.Scheme == "https", minio.BucketLookupPath
		loc += " at " + u.Scheme + "://" + u.Host
	}
	region := cfg.Region
	if region == "" {
		region = DefaultRegion
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fail(err)
	}
	tr.ResponseHeaderTimeout = 2 * time.Minute
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	c, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken),
		Secure:       secure,
		Transport:    tr,
		Region:       region,
		BucketLookup: lookup,
		MaxRetries:   1, // bucket.WithRetry retries, knowing what may be retried
	})
	if err != nil {
		return nil, fail(fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err))
	}
	if prefix != "" {
		prefix += "/"
	}
	return &Store{core: minio.Core{Client: c}, transport: tr, bucket: bkt, prefix: prefix, region: region, location: loc}, nil
}

// parseEndpoint accepts "http://HOST[:PORT]", "https://HOST[:PORT]" or a
// bare "HOST[:PORT]" (https).
func parseEndpoint(e string) (*url.URL, error) {
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%w: endpoint %q is not an S3 server's URL: give http(s)://HOST[:PORT]", dotmesh.ErrInvalidArgument, e)
	}
	return u, nil
}

// ValidateBucketName checks S3's rules for bucket names: 3 to 63 of
// [a-z0-9.-], starting and ending with a letter or digit, no "..".
func ValidateBucketName(b string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: bucket name %q %s (S3 bucket names are 3 to 63 lower-case letters, digits, '.' and '-')", dotmesh.ErrInvalidName, b, why)
	}
	if len(b) < 3 || len(b) > 63 {
		return bad("has the wrong length")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad(fmt.Sprintf("has %q", c))
		}
	}
	if alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }; !alnum(b[0]) || !alnum(b[len(b)-1]) {
		return bad("does not start and end with a letter or digit")
	}
	if strings.Contains(b, "..") {
		return bad("has two dots in a row")
	}
	return nil
}

// Location says bucket, prefix and endpoint ("s3://b/p at http://h:8333").
func (s *Store) Location() string { return s.location }

// Bucket is the bucket's name.
func (s *Store) Bucket() string { return s.bucket }

// Close drops the idle connections.
func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// CreateBucket creates the store's bucket (in Config.Region);
// ErrAlreadyExists when it exists.
func (s *Store) CreateBucket(ctx context.Context) error {
	err := s.core.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
	if err != nil && errors.As(err, new(minio.ErrorResponse)) {
		code := minio.ToErrorResponse(err).Code
		if code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return s.fail(ctx, "create bucket", "", fmt.Errorf("%w: bucket %s exists", dotmesh.ErrAlreadyExists, s.bucket))
		}
	}
	if err != nil {
		return s.fail(ctx, "create bucket", "", s.classify(ctx, "", err))
	}
	return nil
}

func (s *Store) fail(ctx context.Context, op, name string, err error) error {
	return &bucket.Error{Op: op, Name: name, Location: s.location, Err: err}
}

func (s *Store) key(name string) string { return s.prefix + name }

func (s *Store) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := bucket.ValidateName(name); err != nil {
		return s.fail(ctx, "put", name, err)
	}
	return s.put(ctx, "put", name, r, size, minio.PutObjectOptions{})
}

func (s *Store) put(ctx context.Context, op, name string, r io.Reader, size int64, opts minio.PutObjectOptions) error {
	if err := ctx.Err(); err != nil {
		return s.fail(ctx, op, name, err)
	}
	opts.PartSize = PartSize
	opts.ContentType = "application/octet-stream"
	// No SHA-256 of the body in the signature (UNSIGNED-PAYLOAD, as
	// minio-go sends over TLS anyway): over plain HTTP it would sign
	// every 64 KiB with a streaming signature, a seventh of a push's CPU
	// here and as much again on the server to check it. Every object
	// dotmesh writes is sealed or checksummed, bound to its name, and
	// checked on every read.
	opts.DisableContentSha256 = true
	cr := &countingReader{r: r}
	_, err := s.core.Client.PutObject(ctx, s.bucket, s.key(name), cr, size, opts)
	if err != nil {
		if size >= 0 && cr.eof && cr.n < size {
			return s.fail(ctx, op, name, fmt.Errorf("%w: the reader ended after %d of the %d bytes given as the object's size", dotmesh.ErrInvalidArgument, cr.n, size))
		}
		if cr.err != nil {
			return s.fail(ctx, op, name, cr.err) // the caller's reader failed
		}
		return s.fail(ctx, op, name, s.classify(ctx, name, err))
	}
	return nil
}

// countingReader notes how a Put's reader ended, to tell its failures
// from the server's.
type countingReader struct {
	r   io.Reader
	n   int64
	eof bool
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	} else if err != nil {
		c.err = err
	}
	return n, err
}

func (s *Store) Create(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := bucket.ValidateName(name); err != nil {
		return s.fail(ctx, "create", name, err)
	}
	if size < 0 || size > PartSize {
		return s.fail(ctx, "create", name, fmt.Errorf("%w: a create needs the object's size, at most %d bytes (got %d)", dotmesh.ErrInvalidArgument, PartSize, size))
	}
	ok, err := s.conditional(ctx)
	if err != nil {
		return s.fail(ctx, "create", name, err)
	}
	if !ok {
		return s.fail(ctx, "create", name, fmt.Errorf("%w: the S3 server ignores conditional writes (If-None-Match), so an object cannot be created only if absent", dotmesh.ErrNotSupported))
	}
	return s.create(ctx, name, r, size)
}

func (s *Store) create(ctx context.Context, name string, r io.Reader, size int64) error {
	opts := minio.PutObjectOptions{DisableMultipart: true}
	opts.SetMatchETagExcept("*")
	return s.put(ctx, "create", name, r, size, opts)
}

// conditional finds out once whether the server honours If-None-Match on
// a put: a probe object created twice must fail the second time.
func (s *Store) conditional(ctx context.Context) (bool, error) {
	s.condMu.Lock()
	defer s.condMu.Unlock()
	if s.cond != 0 {
		return s.cond > 0, nil
	}
	var b [8]byte
	rand.Read(b[:])
	probe := probePrefix + hex.EncodeToString(b[:])
	defer s.core.RemoveObject(context.WithoutCancel(ctx), s.bucket, s.key(probe), minio.RemoveObjectOptions{})
	for i := range 2 {
		err := s.create(ctx, probe, strings.NewReader("probe"), 5)
		switch {
		case i == 0 && err != nil:
			var be *bucket.Error
			if errors.As(err, &be) {
				err = be.Err
			}
			return false, err
		case i == 1 && errors.Is(err, dotmesh.ErrAlreadyExists):
			s.cond = 1
		case i == 1 && (err == nil || errors.Is(err, dotmesh.ErrNotSupported)):
			s.cond = -1
		case i == 1:
			return false, err
		}
	}
	return s.cond > 0, nil
}

func (s *Store) Get(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := bucket.ValidateName(name); err != nil {
		return nil, s.fail(ctx, "get", name, err)
	}
	if off < 0 {
		return nil, s.fail(ctx, "get", name, fmt.Errorf("%w: negative offset %d", dotmesh.ErrInvalidArgument, off))
	}
	if length == 0 {
		oi, err := s.Stat(ctx, name)
		if err != nil {
			var be *bucket.Error
			if errors.As(err, &be) {
				be.Op = "get"
			}
			return nil, err
		}
		if off > oi.Size {
			return nil, s.fail(ctx, "get", name, fmt.Errorf("%w: object has %d bytes, read from offset %d (truncated?)", dotmesh.ErrCorrupt, oi.Size, off))
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	switch {
	case length > 0:
		opts.SetRange(off, off+length-1)
	case off > 0:
		opts.SetRange(off, 0)
	}
	body, info, _, err := s.core.GetObject(ctx, s.bucket, s.key(name), opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			// S3 refuses "bytes=N-" of an N-byte object; that read is empty.
			if oi, serr := s.Stat(ctx, name); serr == nil && length < 0 && off == oi.Size {
				return io.NopCloser(strings.NewReader("")), nil
			}
			return nil, s.fail(ctx, "get", name, fmt.Errorf("%w: object is shorter than offset %d (truncated?)", dotmesh.ErrCorrupt, off))
		}
		return nil, s.fail(ctx, "get", name, s.classify(ctx, name, err))
	}
	want := info.Size
	if length > 0 {
		if info.Size < length {
			body.Close()
			return nil, s.fail(ctx, "get", name, fmt.Errorf("%w: object holds only %d bytes at offset %d, read of %d goes past its end (truncated?)", dotmesh.ErrCorrupt, info.Size, off, length))
		}
		want = length
	}
	return &bodyReader{s: s, ctx: ctx, name: name, body: body, want: want}, nil
}

// bodyReader turns a body that ends early into ErrCorrupt: the object
// is shorter than its headers said.
type bodyReader struct {
	s    *Store
	ctx  context.Context
	name string
	body io.ReadCloser
	n    int64
	want int64
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF && b.n < b.want, errors.Is(err, io.ErrUnexpectedEOF):
		return n, b.s.fail(b.ctx, "get", b.name, fmt.Errorf("%w: the object's body ended after %d of %d bytes", dotmesh.ErrCorrupt, b.n, b.want))
	case err != nil && err != io.EOF:
		return n, b.s.fail(b.ctx, "get", b.name, b.s.classify(b.ctx, b.name, err))
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.body.Close() }

func (s *Store) Stat(ctx context.Context, name string) (bucket.ObjectInfo, error) {
	if err := bucket.ValidateName(name); err != nil {
		return bucket.ObjectInfo{}, s.fail(ctx, "stat", name, err)
	}
	oi, err := s.core.StatObject(ctx, s.bucket, s.key(name), minio.StatObjectOptions{})
	if err != nil {
		return bucket.ObjectInfo{}, s.fail(ctx, "stat", name, s.classify(ctx, name, err))
	}
	return bucket.ObjectInfo{Name: name, Size: oi.Size, Modified: oi.LastModified}, nil
}

func (s *Store) List(ctx context.Context, prefix string, fn func(bucket.ObjectInfo) error) error {
	if err := bucket.ValidateListPrefix(prefix); err != nil {
		return s.fail(ctx, "list", prefix, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the lister when fn stops early
	for oi := range s.core.ListObjectsIter(lctx, s.bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if oi.Err != nil {
			return s.fail(ctx, "list", prefix, s.classify(ctx, "", oi.Err))
		}
		name := strings.TrimPrefix(oi.Key, s.prefix)
		if bucket.ValidateName(name) != nil {
			continue // not an object of this store (a probe, another tool's)
		}
		if err := fn(bucket.ObjectInfo{Name: name, Size: oi.Size, Modified: oi.LastModified}); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return s.fail(ctx, "list", prefix, err)
	}
	return nil
}

func (s *Store) Delete(ctx context.Context, name string) error {
	if err := bucket.ValidateName(name); err != nil {
		return s.fail(ctx, "delete", name, err)
	}
	if err := s.core.RemoveObject(ctx, s.bucket, s.key(name), minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(s.classify(ctx, name, err), dotmesh.ErrNotFound) && minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return s.fail(ctx, "delete", name, s.classify(ctx, name, err))
	}
	return nil
}

// classify turns a client error into words wrapping a dotmesh sentinel.
func (s *Store) classify(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch er.Code {
		case "NoSuchKey":
			return fmt.Errorf("%w: no such object", dotmesh.ErrNotFound)
		case "NoSuchBucket":
			return fmt.Errorf("%w: bucket %s does not exist on that server; create it, or check the bucket name, the endpoint and the region", dotmesh.ErrNotFound, s.bucket)
		case "InvalidAccessKeyId":
			return fmt.Errorf("%w: the S3 server does not know the access key (%s); check the access key id and the endpoint", dotmesh.ErrPermissionDenied, er.Code)
		case "SignatureDoesNotMatch":
			return fmt.Errorf("%w: the S3 server refused the signature (%s); check the secret key that goes with the access key", dotmesh.ErrPermissionDenied, er.Code)
		case "AccessDenied", "AllAccessDisabled", "AccountProblem":
			return fmt.Errorf("%w: the S3 server refused access to bucket %s (%s); check that the credentials may read and write it", dotmesh.ErrPermissionDenied, s.bucket, er.Code)
		case "ExpiredToken", "InvalidToken", "TokenRefreshRequired":
			return fmt.Errorf("%w: the session token was refused (%s); get fresh credentials", dotmesh.ErrPermissionDenied, er.Code)
		case "PreconditionFailed", "ConditionalRequestConflict":
			return fmt.Errorf("%w: object exists (%s)", dotmesh.ErrAlreadyExists, er.Code)
		case "NotImplemented":
			return fmt.Errorf("%w: the S3 server does not implement this (%s: %s)", dotmesh.ErrNotSupported, er.Code, er.Message)
		case "InvalidBucketName":
			return fmt.Errorf("%w: the S3 server refused the bucket name %s (%s)", dotmesh.ErrInvalidName, s.bucket, er.Code)
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "OperationAborted", "RequestTimeTooSkewed":
			return fmt.Errorf("%w: the S3 server answered %s: %s", dotmesh.ErrUnavailable, er.Code, er.Message)
		}
		switch {
		case er.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%w: %s", dotmesh.ErrNotFound, er.Error())
		case er.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: the S3 server refused access to bucket %s (%s); check the credentials", dotmesh.ErrPermissionDenied, s.bucket, er.Code)
		case er.StatusCode == http.StatusPreconditionFailed:
			return fmt.Errorf("%w: object exists", dotmesh.ErrAlreadyExists)
		case er.StatusCode >= 500 || er.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%w: the S3 server answered %d %s: %s", dotmesh.ErrUnavailable, er.StatusCode, er.Code, er.Message)
		case er.StatusCode != 0:
			return fmt.Errorf("the S3 server answered %d %s: %s", er.StatusCode, er.Code, er.Message)
		}
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: cannot reach the S3 server: %v", dotmesh.ErrUnavailable, err)
	}
	return err
}
