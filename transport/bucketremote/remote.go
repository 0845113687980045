package bucketremote

import (
	"log/slog"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// BackendName is what a Remote's State reports as its backend: no node
// runs it, so transfers to and from a bucket use the neutral format.
const BackendName = "bucket"

// Config says how to reach a repository.
type Config struct {
	// URL is the store's URL (s3://BUCKET[/PREFIX], file:///DIR), opened
	// with bucket.Open; the s3 kind is there once a program imports
	// bucket/s3.
	URL string
	// Store holds the endpoint, region and credentials (frontends fill
	// it; the library reads no environment).
	Store bucket.Config
	// Password opens the repository's key (a key file's bytes count as
	// a password); ignored by a repository without encryption.
	Password []byte
	// Parallel bounds the store calls in flight (default 8).
	Parallel int
	// Retry tunes the retries of store calls; zero means the defaults.
	Retry bucket.RetryOptions
	// Logger logs store calls at debug level and transfers at info;
	// nil discards.
	Logger *slog.Logger
	// Repo tunes the opened repository (locks, clock); its Logger
	// defaults to Logger.
	Repo repo.Options
}

// Remote is an open repository used as a transfer peer and for
// maintenance. It is safe for concurrent use; Close it when done (it
// releases the locks it took and closes the store).
type Remote struct {
	repo *repo.Repo
	cfg  Config
	log  *slog.Logger
	// commits caches decoded commit records (they never change).
	commits RecordCache

	mu     sync.Mutex
	lock   *repo.Lock // the shared lock of the first write, until Close
	closed bool
}

// Repo is the repository (keys, locks, Check).
func (r *Remote) Repo() *repo.Repo { return r.repo }

// Location describes the store for messages, without credentials.
func (r *Remote) Location() string { return r.repo.Store().Location() }

var _ dotmesh.Transport = (*Remote)(nil)

// DotInfo is one dot a bucket holds.
type DotInfo struct {
	Name     dotmesh.DotName `json:"name"`
	Branches []BranchInfo    `json:"branches"`
	Tags     []dotmesh.Tag   `json:"tags,omitempty"`
}

// BranchInfo is one branch of a dot in a bucket.
type BranchInfo struct {
	Name    string           `json:"name"`
	Head    dotmesh.CommitID `json:"head"`
	Time    time.Time        `json:"time"`    // the head commit's time
	Commits int              `json:"commits"` // in its history
	// Bytes is the size of the head commit's tree (file contents).
	Bytes int64 `json:"bytes"`
}

// GCOptions tune GC.
type GCOptions struct {
	// Keep is how many of each branch's newest commits stay (0: all);
	// tagged commits always stay, as on a node.
	Keep int
	// DryRun reports what would go and deletes nothing.
	DryRun bool
}

// GCResult says what GC removed (or would remove).
type GCResult struct {
	Commits int   `json:"commits"` // commit records removed
	Blobs   int   `json:"blobs"`   // blobs no kept commit uses, removed
	Bytes   int64 `json:"bytes"`   // their stored size (what the bucket frees, less pack headers)
	// Unfinished counts commits of pushes that never finished, removed
	// once older than the repository's lock expiry.
	Unfinished int `json:"unfinished"`
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// ReadData reads and checks blobs: all when SamplePercent is 0,
	// else a random sample of that share (0 < SamplePercent <= 100).
	ReadData      bool
	SamplePercent float64
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Commits   int       `json:"commits"`
	Blobs     int       `json:"blobs"`      // blobs listed
	BlobsRead int       `json:"blobs_read"` // blobs read and checked
	Problems  []Problem `json:"problems,omitempty"`
}

// Problem is one thing Verify found wrong: the object, and the dot and
// commit that need it when known.
type Problem struct {
	Object  string `json:"object"`
	Dot     string `json:"dot,omitempty"`
	Commit  string `json:"commit,omitempty"`
	Message string `json:"message"`
}
