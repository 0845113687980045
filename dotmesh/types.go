package dotmesh

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// DotID is the immutable identity of a dot. Names can be reused after a
// delete; ids never are. Backends key their storage by DotID.
type DotID string

// CommitID identifies a commit: 32 lowercase hex digits, unique across all
// dots and nodes, so any unique prefix names it.
type CommitID string

// NewDotID returns a fresh random dot id.
func NewDotID() DotID { return DotID(randomHex(16)) }

// NewCommitID returns a fresh random commit id.
func NewCommitID() CommitID { return CommitID(randomHex(16)) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)
}

// ValidateID checks that s looks like an id made by NewDotID/NewCommitID
// (or a prefix of one, when prefix is true). Ids reach backends as path and
// dataset components, so nothing else may pass.
func ValidateID(what, s string, prefix bool) error {
	if s == "" || len(s) > 32 || (!prefix && len(s) != 32) {
		return fmt.Errorf("%w: %s id %q must be 32 hex digits", ErrInvalidName, what, truncate(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: %s id %q must be lowercase hex", ErrInvalidName, what, truncate(s))
		}
	}
	return nil
}

// Dot is a named, versioned unit of application state.
type Dot struct {
	ID        DotID             `json:"id"`
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Backend   string            `json:"backend"` // the backend the dot was created on
	Current   string            `json:"current"` // the checked-out branch
	Created   time.Time         `json:"created"`
	Upstreams map[string]string `json:"upstreams,omitempty"` // remote name -> remote dot, set by push/pull
	Labels    map[string]string `json:"labels,omitempty"`    // see labels.go
}

// DotName returns the dot's name.
func (d *Dot) DotName() DotName { return DotName{Namespace: d.Namespace, Name: d.Name} }

// Branch is a line of commits in a dot with its own writable working state.
type Branch struct {
	Dot     DotID     `json:"dot"`
	Name    string    `json:"name"`
	Head    CommitID  `json:"head,omitempty"`   // empty until the first commit
	Origin  CommitID  `json:"origin,omitempty"` // commit the branch was made from
	Created time.Time `json:"created"`
	// Master is the cluster node with the branch's working state; empty
	// on a single node. Moving names the node it is being handed to
	// (since MovingSince), see Cluster.Release.
	Master      string    `json:"master,omitempty"`
	Moving      string    `json:"moving,omitempty"`
	MovingSince time.Time `json:"moving_since,omitzero"`
	// Restoring names the commit the working state is being restored
	// to (reset, a transfer moving the branch); set until the head moves
	// there. After a crash the node finishes the restore when it starts.
	Restoring CommitID `json:"restoring,omitempty"`
	// Storage names the branch's storage to the backend when it is not
	// Name: a rename changes only the name, so it is one registry write
	// that never touches data (see RenameBranch).
	Storage string `json:"storage,omitempty"`
}

var zeroTime time.Time

// Ref returns the backend reference of the branch: its storage name.
func (b *Branch) Ref() BranchRef { return BranchRef{Dot: b.Dot, Branch: b.StorageName()} }

// StorageName is the name the backend stores the branch under.
func (b *Branch) StorageName() string {
	if b.Storage != "" {
		return b.Storage
	}
	return b.Name
}

// Commit is an immutable, atomic point-in-time state of all subdots of a
// branch. Its metadata lives in the ClusterStore, never in the user's tree.
type Commit struct {
	ID       CommitID          `json:"id"`
	Dot      DotID             `json:"dot"`
	Branch   string            `json:"branch"` // the branch it was made on; its data lives there
	Parent   CommitID          `json:"parent,omitempty"`
	Author   string            `json:"author"`
	Time     time.Time         `json:"time"`
	Message  string            `json:"message"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Info is what the backend reported about the commit (sizes, tool
	// versions...). Backends choose the keys, but one is common:
	// InfoAddedBytes, the bytes the commit added to storage, where the
	// backend can tell cheaply (dump: new chunk bytes stored; zfs and
	// btrfs leave it out, as zfs-fuse has no `written` property and btrfs
	// counts shared extents only with quotas).
	Info CommitInfo `json:"info,omitempty"`
	// Pruned marks where this node's history starts although Parent is
	// set: the parent and all before it are not here, because gc removed
	// them or the commit arrived as the start of a shallow history (git's
	// "grafted"). Parent keeps its id, so histories still compare.
	Pruned bool `json:"pruned,omitempty"`
}

// CommitInfo is Commit.Info. Its values travel as strings; a frontend may
// print the decimal ones as JSON numbers (dm --json does, for scripts), so
// it decodes numbers too, keeping their text, and either form reads back.
type CommitInfo map[string]string

// UnmarshalJSON accepts string and number values.
func (ci *CommitInfo) UnmarshalJSON(b []byte) error {
	if m, ok := plainCommitInfo(b); ok {
		*ci = m
		return nil
	}
	// Strings only, as stored and on the wire: the plain map's decoding.
	var plain map[string]string
	if err := json.Unmarshal(b, &plain); err == nil {
		*ci = plain
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*ci = nil
		return nil
	}
	out := make(CommitInfo, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[k] = s
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("commit info %q: not a string or a number: %s", k, v)
		}
		out[k] = n.String()
	}
	*ci = out
	return nil
}

// plainCommitInfo reads the shape encoding/json writes for a CommitInfo,
// {"k":"v",...} with no space and no escape, without a second pass of
// the JSON decoder: a long log decodes thousands. Anything else is left
// to the decoder (false).
func plainCommitInfo(b []byte) (CommitInfo, bool) {
	if len(b) < 2 || b[0] != '{' {
		return nil, false
	}
	out := make(CommitInfo, 12)
	rest := b[1:]
	if rest[0] == '}' {
		return out, len(rest) == 1
	}
	for {
		var k, v []byte
		var ok bool
		if k, rest, ok = plainString(rest); !ok || len(rest) == 0 || rest[0] != ':' {
			return nil, false
		}
		if v, rest, ok = plainString(rest[1:]); !ok || len(rest) == 0 {
			return nil, false
		}
		out[string(k)] = string(v)
		switch {
		case rest[0] == '}' && len(rest) == 1:
			return out, true
		case rest[0] != ',':
			return nil, false
		}
		rest = rest[1:]
	}
}

// plainString reads a JSON string without escapes or control characters
// and of valid UTF-8 at the start of b, and returns its text and the rest.
func plainString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[1:i], b[i+1:], utf8.Valid(b[1:i])
		case c == '\\' || c < 0x20:
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// InfoAddedBytes is the Commit.Info key of the bytes a commit added to
// storage (decimal), for the backends that report it.
const InfoAddedBytes = "added_bytes"

// Ref returns the backend reference of the commit.
func (c *Commit) Ref() CommitRef {
	return CommitRef{BranchRef: BranchRef{Dot: c.Dot, Branch: c.Branch}, ID: c.ID}
}

// BranchRef names a branch's working state to a backend.
type BranchRef struct {
	Dot    DotID
	Branch string
}

func (b BranchRef) String() string { return string(b.Dot) + "@" + b.Branch }

// Validate checks that the reference is safe to use as a path or dataset
// component.
func (b BranchRef) Validate() error {
	if err := ValidateID("dot", string(b.Dot), false); err != nil {
		return err
	}
	return ValidateName("branch", b.Branch)
}

// CommitRef names one commit to a backend: the branch whose storage holds
// it, and its id.
type CommitRef struct {
	BranchRef
	ID CommitID
}

func (c CommitRef) String() string { return c.BranchRef.String() + "#" + string(c.ID) }

// Validate checks the branch reference and the id.
func (c CommitRef) Validate() error {
	if err := c.BranchRef.Validate(); err != nil {
		return err
	}
	return ValidateID("commit", string(c.ID), false)
}

// Usage is what a backend reports about a branch's working state.
type Usage struct {
	// Size is the bytes the working state occupies.
	Size int64 `json:"size"`
	// Dirty is true when the working state differs from the branch head
	// (or, before the first commit, is not empty).
	Dirty bool `json:"dirty"`
	// DirtyBytes estimates how many bytes differ from the head.
	DirtyBytes int64 `json:"dirty_bytes"`
}
