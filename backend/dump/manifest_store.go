package dump

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// A manifest is stored like file content: its encoding is split by the
// content-defined chunker (so an unchanged or slightly changed manifest
// adds little) and a small root object lists the pieces. The root's hash
// names the manifest.

const rootMagic = "DMMR\x01"

// objectGetter reads a verified object: a cas.Store or a cas.Batch.
type objectGetter interface {
	Get(h cas.Hash, dst []byte) ([]byte, error)
}

// storedManifest is a decoded manifest with the objects that hold it.
type storedManifest struct {
	Root   cas.Hash
	Pieces []Chunk // the chunks of the encoded manifest
	*Manifest
}

// storeManifest writes m through batch and returns its root hash.
func storeManifest(batch *cas.Batch, m *Manifest) (cas.Hash, error) {
	return storeEncoded(batch, newManifestReader(m))
}

// storeEncoded stores the manifest encoding read from r: its pieces,
// then the root that lists them.
func storeEncoded(batch *cas.Batch, r io.Reader) (cas.Hash, error) {
	c := newChunker(r, metaChunks)
	buf := make([]byte, 0, metaChunks.Max)
	var pieces []Chunk
	for {
		chunk, err := c.Next(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return cas.Hash{}, fmt.Errorf("chunk manifest: %w", err)
		}
		h, _, err := batch.Put(chunk.Data)
		if err != nil {
			return cas.Hash{}, fmt.Errorf("store manifest piece: %w", err)
		}
		pieces = append(pieces, Chunk{Hash: h, Size: uint32(chunk.Length)})
	}
	root, _, err := batch.Put(encodeRoot(pieces))
	if err != nil {
		return cas.Hash{}, fmt.Errorf("store manifest root: %w", err)
	}
	return root, nil
}

func encodeRoot(pieces []Chunk) []byte {
	buf := make([]byte, 0, len(rootMagic)+binary.MaxVarintLen64+len(pieces)*(cas.HashSize+binary.MaxVarintLen32))
	buf = append(buf, rootMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(pieces)))
	for _, p := range pieces {
		buf = append(buf, p.Hash[:]...)
		buf = binary.AppendUvarint(buf, uint64(p.Size))
	}
	return buf
}

func decodeRoot(data []byte) ([]Chunk, error) {
	d := decoder{buf: data}
	if !d.expect(rootMagic) {
		return nil, fmt.Errorf("%w: manifest root: bad magic or unsupported version", errManifest)
	}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.buf))/(cas.HashSize+1) {
		return nil, fmt.Errorf("%w: manifest root: piece count %d does not fit", errManifest, n)
	}
	pieces := make([]Chunk, n)
	for i := range pieces {
		copy(pieces[i].Hash[:], d.bytes(cas.HashSize))
		pieces[i].Size = uint32(d.uvarintMax(cas.MaxObjectSize))
		if d.err == nil && pieces[i].Size == 0 {
			d.fail("empty piece")
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: manifest root: %v", errManifest, d.err)
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%w: manifest root: %d trailing bytes", errManifest, len(d.buf))
	}
	return pieces, nil
}

// rootPieces reads the manifest root named by root and decodes the list
// of pieces it names; errors wrap dotmesh.ErrCorrupt and name the root.
func rootPieces(get objectGetter, root cas.Hash) ([]Chunk, error) {
	rootData, err := get.Get(root, nil)
	if err != nil {
		return nil, manifestErr(root, err)
	}
	pieces, err := decodeRoot(rootData)
	if err != nil {
		return nil, manifestErr(root, err)
	}
	return pieces, nil
}

// loadManifest reads and validates the manifest named by root. Damage or
// missing objects wrap dotmesh.ErrCorrupt and name the object.
func loadManifest(get objectGetter, root cas.Hash) (*storedManifest, error) {
	// Decoded piece by piece: the whole encoding is never held beside
	// the entries (60 MB for 500,000 files).
	it, err := iterManifest(get, root)
	if err != nil {
		return nil, err
	}
	pieces := it.all
	// Grow with the verified data rather than trusting the declared count.
	m := &Manifest{Entries: make([]Entry, 0, min(it.n, 1<<12))}
	for {
		var e Entry
		ok, err := it.next(&e)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		m.Entries = append(m.Entries, e)
	}
	return &storedManifest{Root: root, Pieces: pieces, Manifest: m}, nil
}

func manifestErr(root cas.Hash, err error) error {
	if errors.Is(err, dotmesh.ErrCorrupt) {
		return fmt.Errorf("manifest %s: %w", root, err)
	}
	// A missing object or a malformed manifest means the store is damaged.
	return fmt.Errorf("%w: manifest %s: %w", dotmesh.ErrCorrupt, root, err)
}

// objects calls fn once for every object the manifest needs: root,
// pieces, then file chunks.
func (sm *storedManifest) objects(fn func(h cas.Hash) error) error {
	seen := make(map[cas.Hash]struct{})
	visit := func(h cas.Hash) error {
		if _, ok := seen[h]; ok {
			return nil
		}
		seen[h] = struct{}{}
		return fn(h)
	}
	if err := visit(sm.Root); err != nil {
		return err
	}
	for _, p := range sm.Pieces {
		if err := visit(p.Hash); err != nil {
			return err
		}
	}
	for i := range sm.Entries {
		for _, c := range sm.Entries[i].Chunks {
			if err := visit(c.Hash); err != nil {
				return err
			}
		}
	}
	return nil
}
