package bucketremote

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// The repository layout of a bucket remote (see the package doc). Every
// name is a repo record or ref name: slash-separated segments.
const (
	// KindCommit is the record kind of commit records, named
	// CommitName(dot, id).
	KindCommit = "commit"
	// refBranch and refTags are the segments after a dot's name in its
	// refs: <ns>/<dot>/b/<branch> and <ns>/<dot>/tags.
	refBranch = "b"
	refTags   = "tags"
	// formatVersion is the version of the records, ref bodies and tree
	// encoding written here; readers refuse others.
	formatVersion = 1
)

// normDot fills in the default namespace, as the engine does.
func normDot(dot dotmesh.DotName) dotmesh.DotName {
	if dot.Namespace == "" {
		dot.Namespace = dotmesh.DefaultNamespace
	}
	return dot
}

// checkDot validates a dot's name for use in the repository's names.
func checkDot(dot dotmesh.DotName) (dotmesh.DotName, error) {
	dot = normDot(dot)
	if err := dot.Validate(); err != nil {
		return dot, err
	}
	return dot, nil
}

// checkRecordName refuses a name longer than the repository takes, with
// words about the dot rather than the repository.
func checkRecordName(what, name string) error {
	if len(name) > repo.MaxRecordName {
		return fmt.Errorf("%w: %s %q is %d characters long; a bucket takes names of namespace, dot and branch of at most %d characters in all; use shorter names",
			dotmesh.ErrInvalidName, what, name, len(name), repo.MaxRecordName-8)
	}
	return nil
}

// dotPrefix is the name prefix of everything of dot: "<ns>/<dot>".
func dotPrefix(dot dotmesh.DotName) string {
	dot = normDot(dot)
	return dot.Namespace + "/" + dot.Name
}

// CommitName is the name of commit id's record of dot:
// "<ns>/<dot>/<commit id>".
func CommitName(dot dotmesh.DotName, id dotmesh.CommitID) string {
	return dotPrefix(dot) + "/" + string(id)
}

// ParseCommitName splits a commit record's name.
func ParseCommitName(name string) (dotmesh.DotName, dotmesh.CommitID, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return dotmesh.DotName{}, "", fmt.Errorf("%w: commit record name %q is not <namespace>/<dot>/<commit id>", dotmesh.ErrCorrupt, name)
	}
	dot := dotmesh.DotName{Namespace: parts[0], Name: parts[1]}
	if err := dot.Validate(); err != nil {
		return dotmesh.DotName{}, "", fmt.Errorf("%w: commit record %q: %v", dotmesh.ErrCorrupt, name, err)
	}
	if err := dotmesh.ValidateID("commit", parts[2], false); err != nil {
		return dotmesh.DotName{}, "", fmt.Errorf("%w: commit record %q: %v", dotmesh.ErrCorrupt, name, err)
	}
	return dot, dotmesh.CommitID(parts[2]), nil
}

// BranchRefName is the ref holding branch's head: "<ns>/<dot>/b/<branch>".
func BranchRefName(dot dotmesh.DotName, branch string) string {
	return dotPrefix(dot) + "/" + refBranch + "/" + branch
}

// BranchRefPrefix is the prefix the branch refs of dot share, for
// repo.ListRefs.
func BranchRefPrefix(dot dotmesh.DotName) string { return dotPrefix(dot) + "/" + refBranch }

// TagsRefName is the ref holding all tags of dot: "<ns>/<dot>/tags". One
// ref for all of them: a transfer reads them in one call and adds the
// ones it brings with one compare-and-swap.
func TagsRefName(dot dotmesh.DotName) string { return dotPrefix(dot) + "/" + refTags }

// RefName is a parsed ref name: a branch's (Branch set) or a dot's tags.
type RefName struct {
	Dot    dotmesh.DotName
	Branch string // "" for the tags ref
}

// ParseRefName splits a ref's name as BranchRefName and TagsRefName make
// them.
func ParseRefName(name string) (RefName, error) {
	parts := strings.Split(name, "/")
	bad := func(why string) (RefName, error) {
		return RefName{}, fmt.Errorf("%w: ref name %q %s", dotmesh.ErrCorrupt, name, why)
	}
	if len(parts) < 3 {
		return bad("is not <namespace>/<dot>/...")
	}
	rn := RefName{Dot: dotmesh.DotName{Namespace: parts[0], Name: parts[1]}}
	if err := rn.Dot.Validate(); err != nil {
		return bad(err.Error())
	}
	switch {
	case len(parts) == 3 && parts[2] == refTags:
		return rn, nil
	case len(parts) == 4 && parts[2] == refBranch:
		if err := dotmesh.ValidateName("branch", parts[3]); err != nil {
			return bad(err.Error())
		}
		rn.Branch = parts[3]
		return rn, nil
	}
	return bad("is neither a branch's (<ns>/<dot>/b/<branch>) nor tags (<ns>/<dot>/tags)")
}

// BranchRef is the body of a branch ref (JSON).
type BranchRef struct {
	Version int              `json:"v"`
	Head    dotmesh.CommitID `json:"head"`
	// Created is when the branch first appeared in the bucket.
	Created time.Time `json:"created"`
	// Updated is when its head last moved.
	Updated time.Time `json:"updated"`
}

// DecodeBranchRef decodes and checks a branch ref's body.
func DecodeBranchRef(b []byte) (BranchRef, error) {
	var br BranchRef
	if err := decodeJSON(b, &br); err != nil {
		return br, fmt.Errorf("branch ref: %w", err)
	}
	if br.Version != formatVersion {
		return br, fmt.Errorf("%w: branch ref has format version %d; this dotmesh knows version %d", dotmesh.ErrCorrupt, br.Version, formatVersion)
	}
	if err := dotmesh.ValidateID("head commit", string(br.Head), false); err != nil {
		return br, fmt.Errorf("%w: branch ref: %v", dotmesh.ErrCorrupt, err)
	}
	return br, nil
}

// TagsRef is the body of a dot's tags ref (JSON).
type TagsRef struct {
	Version int           `json:"v"`
	Tags    []dotmesh.Tag `json:"tags"` // sorted by name
}

// DecodeTagsRef decodes and checks a tags ref's body.
func DecodeTagsRef(b []byte) (TagsRef, error) {
	var tr TagsRef
	if err := decodeJSON(b, &tr); err != nil {
		return tr, fmt.Errorf("tags ref: %w", err)
	}
	if tr.Version != formatVersion {
		return tr, fmt.Errorf("%w: tags ref has format version %d; this dotmesh knows version %d", dotmesh.ErrCorrupt, tr.Version, formatVersion)
	}
	seen := make(map[string]bool, len(tr.Tags))
	for _, t := range tr.Tags {
		if err := dotmesh.ValidateName("tag", t.Name); err != nil {
			return tr, fmt.Errorf("%w: tags ref: %v", dotmesh.ErrCorrupt, err)
		}
		if err := dotmesh.ValidateID("tagged commit", string(t.Commit), false); err != nil {
			return tr, fmt.Errorf("%w: tags ref: %v", dotmesh.ErrCorrupt, err)
		}
		if seen[t.Name] {
			return tr, fmt.Errorf("%w: tags ref holds tag %s twice", dotmesh.ErrCorrupt, t.Name)
		}
		seen[t.Name] = true
	}
	return tr, nil
}

// CommitRecord is the record of one commit a bucket holds (JSON), named
// CommitName. It is written once, after every blob it names is stored;
// it is visible as part of a branch only once a branch ref leads to it.
type CommitRecord struct {
	Version int `json:"v"`
	// Commit is the commit as the sender described it (id, parent,
	// author, time, message, metadata, its backend's info; Pruned when it
	// is where a shallow history starts).
	Commit dotmesh.Commit `json:"commit"`
	// Tree lists the blobs of the commit's tree encoding (EncodeTree), in
	// order: their contents concatenated are the encoding.
	Tree []repo.ID `json:"-"`
	// Counts of the tree's entries, and Bytes the sum of its files' sizes.
	Files    int64 `json:"files"`
	Dirs     int64 `json:"dirs"`
	Symlinks int64 `json:"symlinks"`
	Bytes    int64 `json:"bytes"`
	// Chunks counts the tree's chunk references (a chunk used twice
	// counts twice), TreeBytes the size of its encoding.
	Chunks    int64 `json:"chunks"`
	TreeBytes int64 `json:"tree_bytes"`
	// Stored is when the record was written.
	Stored time.Time `json:"stored"`
}

type commitRecordJSON struct {
	CommitRecord
	TreeHex []string `json:"tree"`
}

// maxTreeBlobs bounds a commit record's tree list (about 4 TiB of
// tree encoding at the largest chunks; far beyond any tree).
const maxTreeBlobs = 1 << 20

// EncodeCommitRecord encodes rec (with the current format version).
func EncodeCommitRecord(rec *CommitRecord) []byte {
	j := commitRecordJSON{CommitRecord: *rec}
	j.Version = formatVersion
	j.TreeHex = make([]string, len(rec.Tree))
	for i, id := range rec.Tree {
		j.TreeHex[i] = id.String()
	}
	b, _ := json.Marshal(j) // plain data: cannot fail
	return b
}

// DecodeCommitRecord decodes and checks a commit record.
func DecodeCommitRecord(b []byte) (*CommitRecord, error) {
	var j commitRecordJSON
	if err := decodeJSON(b, &j); err != nil {
		return nil, fmt.Errorf("commit record: %w", err)
	}
	rec := j.CommitRecord
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: commit record: %s", dotmesh.ErrCorrupt, fmt.Sprintf(format, a...))
	}
	if rec.Version != formatVersion {
		return nil, bad("format version %d; this dotmesh knows version %d", rec.Version, formatVersion)
	}
	c := rec.Commit
	if err := dotmesh.ValidateID("commit", string(c.ID), false); err != nil {
		return nil, bad("%v", err)
	}
	if c.Parent != "" {
		if err := dotmesh.ValidateID("parent commit", string(c.Parent), false); err != nil {
			return nil, bad("%v", err)
		}
	}
	for k := range c.Metadata {
		if err := dotmesh.ValidateName("metadata key", k); err != nil {
			return nil, bad("%v", err)
		}
	}
	if len(j.TreeHex) == 0 || len(j.TreeHex) > maxTreeBlobs {
		return nil, bad("names %d tree blobs; 1 to %d expected", len(j.TreeHex), maxTreeBlobs)
	}
	rec.Tree = make([]repo.ID, len(j.TreeHex))
	for i, s := range j.TreeHex {
		id, err := repo.ParseID(s)
		if err != nil {
			return nil, bad("%v", err)
		}
		rec.Tree[i] = id
	}
	if rec.Files < 0 || rec.Dirs < 0 || rec.Symlinks < 0 || rec.Bytes < 0 || rec.Chunks < 0 || rec.TreeBytes < 0 {
		return nil, bad("negative counts")
	}
	return &rec, nil
}

// decodeJSON decodes one JSON value of b into v; malformed input wraps
// dotmesh.ErrCorrupt.
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: not JSON: %v", dotmesh.ErrCorrupt, err)
	}
	return nil
}

// Chunk is one chunk of a file in a tree: the BLAKE3-256 hash of its
// plaintext (its blob is repo.BlobID of it) and its length.
type Chunk struct {
	Hash   [32]byte
	Length uint32
}

// TreeEntry is one entry of a commit's tree: a neutral stream's record
// and, for a file, its chunks in order (their lengths sum to Size).
type TreeEntry struct {
	neutral.Entry
	Chunks []Chunk
}

// The tree encoding (binary, versioned, streamed):
//
//	"DMT" version(1)
//	entries, in the neutral stream's order, each:
//	  kind    byte     'd', 'f' or 'l' (neutral.Kind)
//	  shared  uvarint  bytes the path shares with the previous entry's path
//	  suffix  uvarint length + bytes: the rest of the path
//	  mode    uvarint  permission bits (0777)
//	  mtime   varint   Unix nanoseconds
//	  'f':    uvarint size, uvarint chunk count, per chunk 32-byte hash and uvarint length
//	  'l':    uvarint length + target
//	'e' and uvarint the number of entries
//
// Paths share prefixes with their neighbours, so a tree of many files
// stays small; nothing depends on more than the previous entry, so the
// encoding of an unchanged part of a tree is the same bytes from commit
// to commit, and the blobs cut from it (with the repository's chunker)
// deduplicate.
const treeMagic = "DMT\x01"

const (
	maxTreePath   = 4096
	maxTreeTarget = 4096
	treeEnd       = 'e'
)

// TreeEncoder writes a tree encoding.
type TreeEncoder struct {
	w    *bufio.Writer
	prev string
	n    uint64
	num  [binary.MaxVarintLen64]byte
	err  error
}

// NewTreeEncoder starts a tree encoding on w.
func NewTreeEncoder(w io.Writer) *TreeEncoder {
	e := &TreeEncoder{w: bufio.NewWriterSize(w, 64<<10)}
	_, e.err = e.w.WriteString(treeMagic)
	return e
}

func (e *TreeEncoder) uv(v uint64) {
	if e.err == nil {
		_, e.err = e.w.Write(e.num[:binary.PutUvarint(e.num[:], v)])
	}
}

func (e *TreeEncoder) bytes(s string) {
	e.uv(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

// Add writes one entry; it checks what the decoder checks.
func (e *TreeEncoder) Add(te TreeEntry) error {
	if e.err != nil {
		return e.err
	}
	if err := checkTreeEntry(&te); err != nil {
		return err
	}
	shared := commonPrefix(e.prev, te.Path)
	e.err = e.w.WriteByte(byte(te.Kind))
	e.uv(uint64(shared))
	e.bytes(te.Path[shared:])
	e.uv(uint64(te.Mode.Perm()))
	if e.err == nil {
		_, e.err = e.w.Write(e.num[:binary.PutVarint(e.num[:], te.MTime.UnixNano())])
	}
	switch te.Kind {
	case neutral.KindFile:
		e.uv(uint64(te.Size))
		e.uv(uint64(len(te.Chunks)))
		for _, c := range te.Chunks {
			if e.err == nil {
				_, e.err = e.w.Write(c.Hash[:])
			}
			e.uv(uint64(c.Length))
		}
	case neutral.KindSymlink:
		e.bytes(te.Target)
	}
	e.prev = te.Path
	e.n++
	return e.err
}

// Close writes the end of the encoding and flushes (it does not close
// the underlying writer).
func (e *TreeEncoder) Close() error {
	if e.err != nil {
		return e.err
	}
	e.err = e.w.WriteByte(treeEnd)
	e.uv(e.n)
	if e.err == nil {
		e.err = e.w.Flush()
	}
	if e.err == nil {
		e.err = errors.New("tree encoder is closed")
		return nil
	}
	return e.err
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// checkTreeEntry checks an entry as written or read: kind, a clean
// relative path, permission bits only, sizes and chunks that agree.
func checkTreeEntry(te *TreeEntry) error {
	p := te.Path
	if p == "" || len(p) > maxTreePath || path.Clean(p) != p || p[0] == '/' || p == ".." || strings.HasPrefix(p, "../") || strings.ContainsRune(p, 0) {
		return fmt.Errorf("%w: tree entry path %.80q is not a clean relative path of at most %d bytes", dotmesh.ErrCorrupt, p, maxTreePath)
	}
	if te.Mode&^fs.ModePerm != 0 {
		return fmt.Errorf("%w: tree entry %.80q has mode %o beyond the permission bits", dotmesh.ErrCorrupt, p, uint32(te.Mode))
	}
	switch te.Kind {
	case neutral.KindDir:
		if te.Size != 0 || len(te.Chunks) != 0 || te.Target != "" {
			return fmt.Errorf("%w: tree entry %.80q is a directory with a size, chunks or target", dotmesh.ErrCorrupt, p)
		}
	case neutral.KindSymlink:
		if te.Size != 0 || len(te.Chunks) != 0 || te.Target == "" || len(te.Target) > maxTreeTarget {
			return fmt.Errorf("%w: tree entry %.80q is a symlink with a size, chunks, or a target that is empty or over %d bytes", dotmesh.ErrCorrupt, p, maxTreeTarget)
		}
	case neutral.KindFile:
		if te.Target != "" {
			return fmt.Errorf("%w: tree entry %.80q is a file with a symlink target", dotmesh.ErrCorrupt, p)
		}
		var sum int64
		for _, c := range te.Chunks {
			if c.Length == 0 || c.Length > repo.MaxObjectSize {
				return fmt.Errorf("%w: tree entry %.80q has a chunk of %d bytes (1 to %d expected)", dotmesh.ErrCorrupt, p, c.Length, repo.MaxObjectSize)
			}
			sum += int64(c.Length)
		}
		if te.Size < 0 || sum != te.Size {
			return fmt.Errorf("%w: tree entry %.80q has size %d but chunks of %d bytes", dotmesh.ErrCorrupt, p, te.Size, sum)
		}
	default:
		return fmt.Errorf("%w: tree entry %.80q has unknown kind %q", dotmesh.ErrCorrupt, p, byte(te.Kind))
	}
	return nil
}

// TreeDecoder reads a tree encoding entry by entry.
type TreeDecoder struct {
	r    *bufio.Reader
	src  *errReader
	prev string
	n    uint64
	done bool
}

// NewTreeDecoder starts reading a tree encoding from r.
func NewTreeDecoder(r io.Reader) (*TreeDecoder, error) {
	src := &errReader{r: r}
	br := bufio.NewReaderSize(src, 64<<10)
	var magic [len(treeMagic)]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, treeErr(err, "its start")
	}
	if string(magic[:]) != treeMagic {
		if string(magic[:3]) == treeMagic[:3] {
			return nil, fmt.Errorf("%w: tree encoding version %d; this dotmesh knows version %d", dotmesh.ErrCorrupt, magic[3], treeMagic[3])
		}
		return nil, fmt.Errorf("%w: not a tree encoding", dotmesh.ErrCorrupt)
	}
	return &TreeDecoder{r: br, src: src}, nil
}

// errReader keeps its reader's failure (not EOF), so that a failed read
// is told from a malformed number.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// treeErr words a read error: a short read is a truncated tree.
func treeErr(err error, where string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: tree encoding ends early, in %s", dotmesh.ErrCorrupt, where)
	}
	return err
}

func (d *TreeDecoder) uv(where string) (uint64, error) {
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		return 0, d.numErr(err, where)
	}
	return v, nil
}

// numErr words a failure to read a number: the reader's, cut short, or
// overlong.
func (d *TreeDecoder) numErr(err error, where string) error {
	if d.src.err != nil {
		return d.src.err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return treeErr(err, where)
	}
	return fmt.Errorf("%w: tree encoding: bad number in %s: %v", dotmesh.ErrCorrupt, where, err)
}

func (d *TreeDecoder) str(limit uint64, where string) (string, error) {
	n, err := d.uv(where)
	if err != nil {
		return "", err
	}
	if n > limit {
		return "", fmt.Errorf("%w: tree encoding: %s of %d bytes (at most %d)", dotmesh.ErrCorrupt, where, n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		return "", treeErr(err, where)
	}
	return string(b), nil
}

// Next returns the next entry, or io.EOF after the last one once the end
// of the encoding checked out (its entry count, and nothing after it).
func (d *TreeDecoder) Next() (TreeEntry, error) {
	var te TreeEntry
	if d.done {
		return te, io.EOF
	}
	k, err := d.r.ReadByte()
	if err != nil {
		return te, treeErr(err, "an entry's kind")
	}
	if k == treeEnd {
		n, err := d.uv("the entry count")
		if err != nil {
			return te, err
		}
		if n != d.n {
			return te, fmt.Errorf("%w: tree encoding says %d entries but holds %d", dotmesh.ErrCorrupt, n, d.n)
		}
		if _, err := d.r.ReadByte(); err != io.EOF {
			if err == nil {
				return te, fmt.Errorf("%w: tree encoding has bytes after its end", dotmesh.ErrCorrupt)
			}
			return te, err
		}
		d.done = true
		return te, io.EOF
	}
	te.Kind = neutral.Kind(k)
	shared, err := d.uv("a path")
	if err != nil {
		return te, err
	}
	if shared > uint64(len(d.prev)) {
		return te, fmt.Errorf("%w: tree encoding: an entry shares %d bytes of a %d-byte path", dotmesh.ErrCorrupt, shared, len(d.prev))
	}
	suffix, err := d.str(maxTreePath, "a path")
	if err != nil {
		return te, err
	}
	te.Path = d.prev[:shared] + suffix
	mode, err := d.uv("a mode")
	if err != nil {
		return te, err
	}
	if mode > uint64(fs.ModePerm) {
		return te, fmt.Errorf("%w: tree entry %.80q has mode %o beyond the permission bits", dotmesh.ErrCorrupt, te.Path, mode)
	}
	te.Mode = fs.FileMode(mode)
	mt, err := binary.ReadVarint(d.r)
	if err != nil {
		return te, d.numErr(err, "an mtime")
	}
	te.MTime = time.Unix(0, mt)
	switch te.Kind {
	case neutral.KindFile:
		size, err := d.uv("a file size")
		if err != nil {
			return te, err
		}
		if size > 1<<62 {
			return te, fmt.Errorf("%w: tree entry %.80q has size %d", dotmesh.ErrCorrupt, te.Path, size)
		}
		te.Size = int64(size)
		n, err := d.uv("a chunk count")
		if err != nil {
			return te, err
		}
		// Every chunk has at least one byte: no more chunks than bytes.
		if n > size {
			return te, fmt.Errorf("%w: tree entry %.80q has %d chunks for %d bytes", dotmesh.ErrCorrupt, te.Path, n, size)
		}
		te.Chunks = make([]Chunk, 0, min(n, 1<<16))
		for i := uint64(0); i < n; i++ {
			var c Chunk
			if _, err := io.ReadFull(d.r, c.Hash[:]); err != nil {
				return te, treeErr(err, "a chunk hash")
			}
			l, err := d.uv("a chunk length")
			if err != nil {
				return te, err
			}
			if l == 0 || l > repo.MaxObjectSize {
				return te, fmt.Errorf("%w: tree entry %.80q has a chunk of %d bytes (1 to %d expected)", dotmesh.ErrCorrupt, te.Path, l, repo.MaxObjectSize)
			}
			c.Length = uint32(l)
			te.Chunks = append(te.Chunks, c)
		}
	case neutral.KindSymlink:
		if te.Target, err = d.str(maxTreeTarget, "a symlink target"); err != nil {
			return te, err
		}
	}
	if err := checkTreeEntry(&te); err != nil {
		return te, err
	}
	d.prev = te.Path
	d.n++
	return te, nil
}

// blobsReader reads the concatenated contents of blobs, fetching them
// in order, a few ahead.
type blobsReader struct {
	cur  []byte
	next func() ([]byte, error)
}

func (b *blobsReader) Read(p []byte) (int, error) {
	for len(b.cur) == 0 {
		data, err := b.next()
		if err != nil {
			return 0, err
		}
		b.cur = data
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

// fetchBlobs returns a function yielding the contents of ids in order
// (io.EOF after the last), fetching up to ahead of them at once; stop
// ends the fetches.
func fetchBlobs(ctx context.Context, rp *repo.Repo, ids []repo.ID, ahead int) (next func() ([]byte, error), stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		data []byte
		err  error
	}
	futures := make(chan chan result, max(ahead, 1)-1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(futures)
		sem := make(chan struct{}, max(ahead, 1))
		for _, id := range ids {
			f := make(chan result, 1)
			select {
			case futures <- f:
			case <-ctx.Done():
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				f <- result{err: ctx.Err()}
				return
			}
			wg.Add(1)
			go func(id repo.ID) {
				defer wg.Done()
				data, err := rp.GetBlob(ctx, id)
				<-sem
				f <- result{data, blobErr(err, id)}
			}(id)
		}
	}()
	next = func() ([]byte, error) {
		f, ok := <-futures
		if !ok {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		r := <-f
		return r.data, r.err
	}
	stop = func() {
		cancel()
		for f := range futures {
			<-f
		}
		wg.Wait()
	}
	return next, stop
}

// blobErr words the failure to read blob id: a missing blob wraps
// dotmesh.ErrCorrupt, as the commit that names it is damaged.
func blobErr(err error, id repo.ID) error {
	if errors.Is(err, dotmesh.ErrNotFound) {
		return fmt.Errorf("%w: blob %s is missing from the repository (%v)", dotmesh.ErrCorrupt, id, err)
	}
	return err
}

// WalkTree decodes the tree of rec, calling fn with each entry in order.
// It fetches the tree's blobs a few at a time (parallel bounds them);
// every error wraps dotmesh.ErrCorrupt when the tree is damaged.
func WalkTree(ctx context.Context, rp *repo.Repo, rec *CommitRecord, parallel int, fn func(TreeEntry) error) error {
	what := fmt.Sprintf("the tree of commit %s", rec.Commit.ID)
	next, stop := fetchBlobs(ctx, rp, rec.Tree, max(min(parallel, 4), 1))
	defer stop()
	d, err := NewTreeDecoder(&blobsReader{next: next})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for {
		te, err := d.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := fn(te); err != nil {
			return err
		}
	}
}

// LoadCommits reads every commit record of dot in rp (the records of
// unfinished pushes too), by commit id, fetching up to parallel at once.
// cache, when not nil, holds records already decoded by record name and
// gets the new ones; a record changes only when GC marks it Pruned, which
// the listing shows (its parent is gone), so such a copy is read again.
func LoadCommits(ctx context.Context, rp *repo.Repo, dot dotmesh.DotName, parallel int, cache *RecordCache) (map[dotmesh.CommitID]*CommitRecord, error) {
	dot, err := checkDot(dot)
	if err != nil {
		return nil, err
	}
	names, err := rp.ListRecords(ctx, KindCommit, dotPrefix(dot))
	if err != nil {
		return nil, err
	}
	out := make(map[dotmesh.CommitID]*CommitRecord, len(names))
	listed := make(map[dotmesh.CommitID]bool, len(names))
	for _, name := range names {
		_, id, err := ParseCommitName(name)
		if err != nil {
			return nil, err
		}
		listed[id] = true
	}
	var mu sync.Mutex
	g := newGroup(ctx, parallel)
	for _, name := range names {
		_, id, _ := ParseCommitName(name)
		// GC rewrites a kept commit whose parent it removed (Pruned): a
		// cached copy that still leads to a parent no longer listed is
		// stale and read again.
		if rec := cache.get(name); rec != nil && (rec.Commit.Pruned || rec.Commit.Parent == "" || listed[rec.Commit.Parent]) {
			mu.Lock()
			out[id] = rec
			mu.Unlock()
			continue
		}
		g.Go(func(gctx context.Context) error {
			rec, err := loadCommit(gctx, rp, name)
			if errors.Is(err, dotmesh.ErrNotFound) {
				// Listed, then removed by a GC running meanwhile (no lock
				// is held while reading): the repository no longer has it.
				return nil
			}
			if err != nil {
				return err
			}
			if rec.Commit.ID != id {
				return fmt.Errorf("%w: commit record %s holds commit %s", dotmesh.ErrCorrupt, name, rec.Commit.ID)
			}
			cache.put(name, rec)
			mu.Lock()
			out[id] = rec
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// loadCommit reads and decodes the commit record named name.
func loadCommit(ctx context.Context, rp *repo.Repo, name string) (*CommitRecord, error) {
	b, err := rp.GetRecord(ctx, KindCommit, name)
	if err != nil {
		return nil, err
	}
	rec, err := DecodeCommitRecord(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rec, nil
}

// RecordCache holds decoded commit records by record name. A nil cache
// holds nothing. It is safe for concurrent use.
type RecordCache struct {
	mu sync.Mutex
	m  map[string]*CommitRecord
}

func (c *RecordCache) get(name string) *CommitRecord {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name]
}

func (c *RecordCache) put(name string, rec *CommitRecord) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*CommitRecord{}
	}
	c.m[name] = rec
}

// Ancestry returns head's history in commits, newest first: head, its
// parent, and so on while the parent is in commits. The last one is
// where the stored history starts (Parent empty, or not stored).
func Ancestry(commits map[dotmesh.CommitID]*CommitRecord, head dotmesh.CommitID) []*CommitRecord {
	var out []*CommitRecord
	seen := map[dotmesh.CommitID]bool{}
	for id := head; id != "" && !seen[id]; {
		rec, ok := commits[id]
		if !ok {
			break
		}
		seen[id] = true
		out = append(out, rec)
		id = rec.Commit.Parent
	}
	return out
}

// ChunkBlobs calls fn with the blob ID of every chunk te names (the
// blobs GC keeps and Verify checks, beside rec.Tree).
func ChunkBlobs(rp *repo.Repo, te TreeEntry, fn func(id repo.ID, length uint32) error) error {
	for _, c := range te.Chunks {
		if err := fn(rp.BlobID(c.Hash), c.Length); err != nil {
			return err
		}
	}
	return nil
}

// group runs functions on at most limit goroutines; the first error
// cancels the others' context and is what Wait returns.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context, limit int) *group {
	ctx, cancel := context.WithCancel(ctx)
	return &group{ctx: ctx, cancel: cancel, sem: make(chan struct{}, max(limit, 1))}
}

// Go runs fn once a slot is free (at once, with the context's error,
// when the group has failed).
func (g *group) Go(fn func(ctx context.Context) error) {
	select {
	case g.sem <- struct{}{}:
	case <-g.ctx.Done():
		g.fail(g.ctx.Err())
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() { <-g.sem }()
		if err := fn(g.ctx); err != nil {
			g.fail(err)
		}
	}()
}

func (g *group) fail(err error) {
	g.once.Do(func() {
		g.err = err
		g.cancel()
	})
}

// Wait waits for every function and returns the first error.
func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}
