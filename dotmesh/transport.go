package dotmesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// Transport is one side of a transfer as seen from the other: a peer node
// (over HTTP, see package client) or this node itself (LocalTransport).
// Push, Pull and Clone run the same algorithm between two Transports, so
// the receiving side always checks, stores and finishes on its own node.
//
// Implementations authenticate to the peer and carry each commit's data
// stream unchanged; the streams carry their own end-to-end checksums
// (backend trailers, or the neutral stream's), and the receiving node
// makes nothing visible unless a stream arrived intact.
type Transport interface {
	// State describes a dot's branch on the peer for a transfer. A missing
	// dot or branch is not an error: State.Exists / Branch say so.
	// Implementations pass opts on to the peer.
	State(ctx context.Context, dot DotName, branch string, opts StateOptions) (*TransferState, error)
	// SendCommit stores commit c on the peer's branch (it stays invisible
	// until Finish): data is a stream in format, incremental from base (a
	// commit the peer has) when base is not nil. It returns only once
	// nothing reads data any more, also on failure: data's Read may call
	// back into the caller (progress), which must not outlive the call.
	SendCommit(ctx context.Context, dot DotName, branch string, c Commit, base *CommitID, format string, data io.Reader) error
	// FetchCommit asks the peer for the stream of commit id in format,
	// incremental from base when not nil. Close ends whatever produces
	// the stream before it returns.
	FetchCommit(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string) (io.ReadCloser, error)
	// Finish moves the peer's branch to req.Head, whose history the peer
	// must hold, creating the dot and the branch if needed.
	Finish(ctx context.Context, dot DotName, branch string, req FinishRequest) (*FinishResult, error)
}

// StateOptions tune Transport.State and TransferPeer.State.
type StateOptions struct {
	// SkipUsage leaves TransferState.Usage zero: the sending side of a
	// transfer plays no part in the dirty check, and reading a working
	// state costs a snapshot on some backends. A peer that predates the
	// option answers with Usage, which is harmless.
	SkipUsage bool
	// BriefHistory leaves each commit of TransferState.History its ID,
	// Parent and Pruned only: a transfer reads nothing else of the
	// receiving side's history, and the messages, metadata and info of a
	// long one are most of the answer (1,000 commits: 541 KB of JSON,
	// some 10 ms to encode and as much to decode). A peer that predates
	// the option answers with whole commits, which is harmless.
	BriefHistory bool
}

// TransferState is a node's view of one branch of a dot, for a transfer.
type TransferState struct {
	// Exists is false when the node has no dot of that name (yet).
	Exists bool `json:"exists"`
	// Backend is the dot's backend, or the node's default for new dots.
	Backend string `json:"backend"`
	// Backends lists every backend the node runs.
	Backends []string `json:"backends"`
	// Branch is nil when the dot lacks the branch.
	Branch *Branch `json:"branch,omitempty"`
	// History is the branch's ancestry, oldest first.
	History []Commit `json:"history,omitempty"`
	// Have lists every commit of the dot the node holds data for,
	// including commits received by an interrupted transfer that were not
	// finished yet: a re-run skips them (resume).
	Have []CommitID `json:"have,omitempty"`
	// Usage is the branch's working state (dirty bytes); zero when asked
	// with StateOptions.SkipUsage.
	Usage Usage `json:"usage"`
	// Tags are the dot's tags on commits of History, by name; a peer that
	// predates tags sends none.
	Tags []Tag `json:"tags,omitempty"`
	// AcceptsTags says the node takes FinishRequest.Tags: a node that
	// predates tags refuses a request with fields it does not know.
	AcceptsTags bool `json:"accepts_tags,omitempty"`
	// AcceptsNeutralBase says the node takes SendCommit(FormatNeutral)
	// with a base as a delta stream against that base (package
	// transport/neutral); a peer without it is sent whole trees only.
	AcceptsNeutralBase bool `json:"accepts_neutral_base,omitempty"`
	// AcceptsNeutralPatch says the node reads and writes
	// FormatNeutralPatch: a delta whose changed files may go as patches
	// against the base's files. Used only when both sides say so.
	AcceptsNeutralPatch bool `json:"accepts_neutral_patch,omitempty"`
}

// FinishRequest completes a transfer on the receiving node.
type FinishRequest struct {
	// Head is the branch's new head.
	Head CommitID `json:"head"`
	// OldHead is the head the sender saw in State; the receiver refuses
	// (ErrConflict) when its branch moved since.
	OldHead CommitID `json:"old_head,omitempty"`
	// Stash keeps diverged commits on a new branch instead of refusing.
	Stash bool `json:"stash,omitempty"`
	// Tags are the sender's tags on the transferred history: the
	// receiver makes each one it lacks that names a commit it holds.
	Tags []Tag `json:"tags,omitempty"`
}

// FinishResult says what Finish did.
type FinishResult struct {
	Head CommitID `json:"head"`
	// Stashed names the branch that now holds the receiver's diverged
	// commits, when there were any.
	Stashed string `json:"stashed,omitempty"`
	// Created is true when the dot or branch was new on the receiver.
	Created bool `json:"created,omitempty"`
	// Tags names the tags the receiver made; SkippedTags those it left
	// alone because it has a tag of that name at another commit, or a
	// branch of that name.
	Tags        []string `json:"tags,omitempty"`
	SkippedTags []string `json:"skipped_tags,omitempty"`
}

// ObjectID names one object of a backend's content-addressed store, as
// lower-case hex (dump: the BLAKE3-256 of the object's content).
type ObjectID string

// MaxObjectBatch bounds how many object ids one have/want request or one
// page of an object list carries.
const MaxObjectBatch = 8192

// MaxObjectList bounds the objects of one commit's stream that take part
// in have/want (about 2 TiB of dump chunks); a larger commit is sent
// whole.
const MaxObjectList = 1 << 22

// ValidateObjectID checks an object id from a peer: 2 to 128 lower-case
// hex digits, an even number of them.
func ValidateObjectID(id ObjectID) error {
	if len(id) < 2 || len(id) > 128 || len(id)%2 != 0 {
		return fmt.Errorf("%w: object id %q must be 2 to 128 lower-case hex digits (an even number)", ErrInvalidArgument, clip(string(id)))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: object id %q must be lower-case hex digits", ErrInvalidArgument, clip(string(id)))
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ObjectList is what a commit's native stream is made of, as listed by
// the sending node.
type ObjectList struct {
	IDs []ObjectID `json:"ids"`
	// Digest identifies the list (ObjectListDigest), so a filter made for
	// it is never applied to another.
	Digest string `json:"digest"`
}

// ObjectListDigest is the SHA-256 (hex) of ids, each followed by '\n'.
func ObjectListDigest(ids []ObjectID) string {
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ObjectFilter narrows a commit's stream to the objects the receiver
// lacks: bit i of Have (least significant bit first) set means the
// receiver holds the i-th object of the ObjectList whose digest is Digest
// and whose length is Count.
type ObjectFilter struct {
	Count  int    `json:"count"`
	Digest string `json:"digest"`
	Have   []byte `json:"have"` // JSON: base64
}

// Validate checks a filter's shape (not yet against a list).
func (f *ObjectFilter) Validate() error {
	switch {
	case f.Count < 0 || f.Count > MaxObjectList:
		return fmt.Errorf("%w: object filter counts %d objects; the limit is %d", ErrInvalidArgument, f.Count, MaxObjectList)
	case len(f.Have) != (f.Count+7)/8:
		return fmt.Errorf("%w: object filter bitmap has %d bytes; %d objects need %d", ErrInvalidArgument, len(f.Have), f.Count, (f.Count+7)/8)
	case f.Count%8 != 0 && f.Have[len(f.Have)-1]>>(f.Count%8) != 0:
		return fmt.Errorf("%w: object filter bitmap has bits set past its %d objects", ErrInvalidArgument, f.Count)
	}
	if len(f.Digest) != 64 {
		return fmt.Errorf("%w: object filter digest must be 64 hex digits", ErrInvalidArgument)
	}
	if _, err := hex.DecodeString(f.Digest); err != nil {
		return fmt.Errorf("%w: object filter digest must be 64 hex digits", ErrInvalidArgument)
	}
	return nil
}

// Held reports bit i of the filter.
func (f *ObjectFilter) Held(i int) bool { return f.Have[i/8]&(1<<(i%8)) != 0 }

// ObjectTransport is an optional Transport capability (checked with a
// type assertion, like ObjectNegotiator on backends): the have/want
// exchange of a native stream made of objects. runTransfer uses it when
// both sides offer it and the sending backend is an ObjectNegotiator;
// otherwise whole streams are sent, as before. An implementation answers
// ErrNotSupported when the dot's backend cannot negotiate.
type ObjectTransport interface {
	Transport
	// CommitObjects lists, on the sending node, the objects of commit
	// id's stream in format (incremental from base when not nil).
	CommitObjects(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string) (*ObjectList, error)
	// HaveObjects asks the receiving node which of ids (at most
	// MaxObjectBatch) it holds for a coming SendCommit of commit c to
	// branch; it keeps those until then.
	HaveObjects(ctx context.Context, dot DotName, branch string, c CommitID, format string, ids []ObjectID) ([]bool, error)
	// FetchCommitWithout is FetchCommit leaving out the objects f marks
	// as held by the receiver.
	FetchCommitWithout(ctx context.Context, dot DotName, id CommitID, base *CommitID, format string, f *ObjectFilter) (io.ReadCloser, error)
}

// InProcessTransport is an optional Transport capability: the peer runs
// in this process (LocalTransport, a bucket remote), so a stream copied
// between two such transports never leaves it. Its bytes are then
// checksummed where they are stored or read (a backend's objects, a
// bucket's sealed objects), not once more on each side of a pipe.
type InProcessTransport interface {
	InProcess() bool
}

type inProcessKey struct{}

// WithInProcessStream marks ctx as that of one commit's copy whose
// stream goes through memory only, from a writer to a reader that both
// get ctx: a neutral stream is then written and read without its
// checksum (neutral.UncheckedWriter, neutral.UncheckedReader).
func WithInProcessStream(ctx context.Context) context.Context {
	return context.WithValue(ctx, inProcessKey{}, true)
}

// InProcessStream reports whether ctx was marked by WithInProcessStream.
func InProcessStream(ctx context.Context) bool {
	v, _ := ctx.Value(inProcessKey{}).(bool)
	return v
}

// inProcess reports whether t runs in this process.
func inProcess(t Transport) bool {
	ip, ok := t.(InProcessTransport)
	return ok && ip.InProcess()
}

// FinishAlong lets a transfer's Finish ride on its last commit's stream:
// runTransfer puts one in the context of that commit's SendCommit
// (WithFinishAlong), and a Transport that can (the node client) sends Req
// with the stream and sets Answered, with Res or Err, from the receiver's
// one answer, which saves the round trip and the handler of a separate
// Finish. A Transport that cannot leaves it unanswered, and runTransfer
// calls Finish. Err is Finish's refusal after the commit was stored.
type FinishAlong struct {
	Req FinishRequest
	// Sent, when not nil, is called once the whole stream has gone and
	// the answer is awaited (the receiver finishes meanwhile).
	Sent func()
	// Check asks the receiver to check Req before it stores the commit
	// and to refuse the commit if Finish would be (api.CheckFinishParam:
	// pushDirectGuess, which guessed the receiver's head). A DirectSink
	// that cannot carry Req or the check does not handle the commit.
	Check    bool
	Answered bool
	Res      *FinishResult
	Err      error
}

type finishAlongKey struct{}

// WithFinishAlong returns ctx carrying f for the SendCommit of a
// transfer's last commit.
func WithFinishAlong(ctx context.Context, f *FinishAlong) context.Context {
	return context.WithValue(ctx, finishAlongKey{}, f)
}

// FinishAlongOf returns the FinishAlong ctx carries, or nil.
func FinishAlongOf(ctx context.Context) *FinishAlong {
	f, _ := ctx.Value(finishAlongKey{}).(*FinishAlong)
	return f
}
