package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Transfer routes. The first four are one node's side of a transfer
// (dotmesh.Transport over HTTP); POST /v1/transfers asks a node to run a
// whole push, pull or clone against a peer it reaches itself.
//
//	GET  /v1/dots/{ns}/{dot}/transfer?branch=B          dotmesh.TransferState (200 also for a missing dot)
//	POST /v1/dots/{ns}/{dot}/transfer/commits?branch=B&format=F[&base=ID]
//	     body: CommitHeader frame, then the commit's data stream    -> 204
//	     (with FinishHeader: finished too                           -> 200 dotmesh.FinishResult)
//	GET  /v1/dots/{ns}/{dot}/transfer/commits/{id}?format=F[&base=ID]
//	     -> application/octet-stream: the data stream (cut off, not
//	        ended cleanly, when the sender fails midway)
//	POST /v1/dots/{ns}/{dot}/transfer/finish?branch=B   dotmesh.FinishRequest -> dotmesh.FinishResult
//	POST /v1/transfers                                  TransferRequest -> NDJSON TransferEvents
//
// The commit stream of a POST .../transfer/commits is read without the
// server's usual body limit and read timeout; everything else is as for
// the other routes.

// SkipUsageHeader, set to "1" on GET .../transfer, carries
// dotmesh.StateOptions.SkipUsage: the answer's usage may be left zero.
// A node that predates it ignores it and answers with usage.
const SkipUsageHeader = "Dotmesh-Skip-Usage"

// BriefHistoryHeader, set to "1" on GET .../transfer, carries
// dotmesh.StateOptions.BriefHistory: the answer's history may hold each
// commit's id, parent and pruned mark only. A node that predates it
// ignores it and answers with whole commits.
const BriefHistoryHeader = "Dotmesh-Brief-History"

// FinishHeader, on POST .../transfer/commits, carries a transfer's
// dotmesh.FinishRequest (EncodeFinish) with its last commit: once the
// commit is stored the node finishes the transfer as POST .../finish
// would and answers 200 with the dotmesh.FinishResult instead of 204, so
// the sender needs no second request (dotmesh.FinishAlong). When the
// finish is refused after the commit was stored, the error answer has
// FinishFailedHeader "1". A node that predates it ignores the header and
// answers 204; the sender then calls finish.
const (
	FinishHeader       = "Dotmesh-Finish"
	FinishFailedHeader = "Dotmesh-Finish-Failed"
)

// DirectProtocol, as the Upgrade of POST .../transfer/commits whose body
// is the commit header alone, asks to send the commit's native stream on
// the bare connection (dotmesh.DirectSink): a receiver that can store it
// that way answers 101, reads the stream, then writes the answer the
// request would have had (204, or 200 with FinishHeader) on the same
// connection; any other answer means the sender sends the framed stream.
const DirectProtocol = "dotmesh-direct"

// CheckFinishParam "1", on a DirectProtocol request with FinishHeader,
// asks the receiver to check that the Finish would move the branch (at
// its OldHead, no uncommitted changes, not in use) before it takes the
// stream or writes anything, and to refuse the upgrade otherwise: the
// sender guessed the receiver's head (a push one commit ahead, without
// asking its state first). It is a query parameter, not an Upgrade token
// of its own, because a node that predates it must refuse the request
// before it stores anything: an unknown query parameter is answered 400
// before the body is read, while an unknown Upgrade is a framed receive
// of an empty stream, which leaves an incoming transfer's record behind.
const CheckFinishParam = "check-finish"

// TransferIdleTimeout is how long a node waits by default for the next
// byte of an incoming commit stream, framed or direct, before it cuts the
// connection (`dm serve --transfer-idle`): a sender that hangs with the
// connection open would otherwise hold the dot's receive for ever.
const TransferIdleTimeout = 2 * time.Minute

// MaxFinishHeader bounds an encoded FinishHeader, well inside a node's
// header limit; a FinishRequest with more tags goes by POST .../finish.
const MaxFinishHeader = 32 << 10

// EncodeFinish encodes req for FinishHeader; ok is false when it would
// be longer than MaxFinishHeader.
func EncodeFinish(req dotmesh.FinishRequest) (v string, ok bool) {
	b, err := json.Marshal(req)
	if err != nil {
		return "", false
	}
	v = base64.RawURLEncoding.EncodeToString(b)
	return v, len(v) <= MaxFinishHeader
}

// DecodeFinish decodes a FinishHeader value; the request's ids and tags
// are checked by the finish itself, before anything changes.
func DecodeFinish(v string) (*dotmesh.FinishRequest, error) {
	if len(v) > MaxFinishHeader {
		return nil, fmt.Errorf("%w: the %s header is longer than %d bytes", dotmesh.ErrInvalidArgument, FinishHeader, MaxFinishHeader)
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%w: the %s header is not base64url: %v", dotmesh.ErrInvalidArgument, FinishHeader, err)
	}
	var req dotmesh.FinishRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: the %s header is not a finish request: %v", dotmesh.ErrInvalidArgument, FinishHeader, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: the %s header has data after its finish request", dotmesh.ErrInvalidArgument, FinishHeader)
	}
	return &req, nil
}

// TransferRequest asks a node to push to, pull from or clone from a peer.
// It carries the peer's API key: the node uses it for this transfer only
// and never logs or stores it.
type TransferRequest struct {
	Op        string         `json:"op"`                   // "push", "pull" or "clone"
	Dot       string         `json:"dot"`                  // local dot, [ns/]name
	Branch    string         `json:"branch,omitempty"`     // empty: current (push/pull), master (clone)
	RemoteDot string         `json:"remote_dot,omitempty"` // empty: the upstream, else the same name
	Remote    TransferRemote `json:"remote"`
	Stash     bool           `json:"stash_on_divergence,omitempty"`
	Neutral   bool           `json:"neutral,omitempty"` // force the backend-neutral stream
}

// TransferRemote says how the node reaches the peer.
type TransferRemote struct {
	Name   string `json:"name,omitempty"` // remote name, to record the upstream under
	URL    string `json:"url"`
	User   string `json:"user,omitempty"`
	APIKey string `json:"api_key"`
	CACert string `json:"ca_cert,omitempty"` // PEM to trust for https URLs
	// ConnectTimeoutMS and IdleTimeoutMS bound the node's calls to the
	// peer (client.WithConnectTimeout, client.WithIdleTimeout); 0 means
	// the client's defaults.
	ConnectTimeoutMS int64 `json:"connect_timeout_ms,omitempty"`
	IdleTimeoutMS    int64 `json:"idle_timeout_ms,omitempty"`
	// Bucket, when set, makes the peer an object-storage bucket (URL
	// and the rest are then unused): the node opens it with these
	// settings for this call only and never logs or keeps them.
	Bucket *TransferBucket `json:"bucket,omitempty"`
}

// TransferBucket is a bucket remote as the node needs it for one
// transfer: where the repository is, the S3 settings and credentials the
// CLI found (the node reads no one's environment for them), and the
// repository's password.
type TransferBucket struct {
	URL          string `json:"url"` // s3://BUCKET[/PREFIX] or file:///DIR
	Endpoint     string `json:"endpoint,omitempty"`
	Region       string `json:"region,omitempty"`
	AccessKey    string `json:"access_key,omitempty"`
	SecretKey    string `json:"secret_key,omitempty"`
	SessionToken string `json:"session_token,omitempty"`
	Password     string `json:"password,omitempty"`
}

// MaxTimeoutMS bounds TransferRemote's timeouts (a day).
const MaxTimeoutMS = 24 * 60 * 60 * 1000

// TransferEvent is one line of the answer to POST /v1/transfers: progress
// and keep-alive lines, then exactly one line with Result or Error.
type TransferEvent struct {
	Progress *dotmesh.Progress       `json:"progress,omitempty"`
	Result   *dotmesh.TransferResult `json:"result,omitempty"`
	Error    *Error                  `json:"error,omitempty"`
	// KeepAlive lines come every TransferKeepAlive while the node works,
	// so that a client's idle timeout tells a busy node from a stopped
	// one. Clients ignore them.
	KeepAlive bool `json:"keepalive,omitempty"`
}

// TransferKeepAlive is how often a running transfer's answer carries a
// line; client idle timeouts must be longer.
const TransferKeepAlive = time.Second

// Commit header frame: magic, big-endian uint32 length, the commit as
// JSON, and the SHA-256 of that JSON (the data stream that follows has its
// own checksum).
const (
	commitMagic     = "DMC1"
	maxCommitHeader = 1 << 20
)

// WriteCommitHeader writes c as a commit header frame.
func WriteCommitHeader(w io.Writer, c dotmesh.Commit) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if len(data) > maxCommitHeader {
		return fmt.Errorf("%w: commit %s's metadata is %d bytes; the limit is %d", dotmesh.ErrInvalidArgument, c.ID, len(data), maxCommitHeader)
	}
	var buf bytes.Buffer
	buf.WriteString(commitMagic)
	_ = binary.Write(&buf, binary.BigEndian, uint32(len(data)))
	buf.Write(data)
	sum := sha256.Sum256(data)
	buf.Write(sum[:])
	_, err = w.Write(buf.Bytes())
	return err
}

// ReadCommitHeader reads a commit header frame, leaving r at the data
// stream. Anything malformed is ErrCorrupt or ErrInvalidArgument.
func ReadCommitHeader(r io.Reader) (dotmesh.Commit, error) {
	var c dotmesh.Commit
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return c, fmt.Errorf("%w: reading the commit header: %v", dotmesh.ErrCorrupt, err)
	}
	if string(hdr[:4]) != commitMagic {
		return c, fmt.Errorf("%w: the transfer body does not start with a commit header (is the peer a matching dotmesh version?)", dotmesh.ErrInvalidArgument)
	}
	n := binary.BigEndian.Uint32(hdr[4:])
	if n > maxCommitHeader {
		return c, fmt.Errorf("%w: commit header of %d bytes exceeds the limit of %d", dotmesh.ErrInvalidArgument, n, maxCommitHeader)
	}
	data := make([]byte, int(n)+sha256.Size)
	if _, err := io.ReadFull(r, data); err != nil {
		return c, fmt.Errorf("%w: reading the commit header: %v", dotmesh.ErrCorrupt, err)
	}
	body, sum := data[:n], data[n:]
	if want := sha256.Sum256(body); !bytes.Equal(want[:], sum) {
		return c, fmt.Errorf("%w: the commit header's checksum does not match", dotmesh.ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%w: commit header: %v", dotmesh.ErrInvalidArgument, err)
	}
	if dec.More() {
		return c, fmt.Errorf("%w: commit header has data after the JSON object", dotmesh.ErrInvalidArgument)
	}
	if err := dotmesh.ValidateID("commit", string(c.ID), false); err != nil {
		return c, err
	}
	return c, nil
}
