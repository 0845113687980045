package cas

import (
	"bytes"
	"crypto/cipher"
	"fmt"
	"os"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/seal"
)

// Sealing encrypts a store at rest. Each object's stored (compressed)
// bytes are sealed in its pack record, bound to the record's name, and
// the record is named by the keyed hash of the object's hash, so a pack
// shows neither content nor content hashes. A pack's index, which maps
// objects' hashes to their records, is sealed whole, bound to its pack's
// id:
//
//	record: name (keyed BLAKE3 of the hash, 32) | length (uint32 LE) | nonce | AEAD(stored bytes)
//	index:  "DMIDXS1\n" | nonce | AEAD(the plain index format)
//
// Plain and sealed stores are not mixed: a store is opened with the
// Sealing it was made with, or without one.
type Sealing struct {
	AEAD cipher.AEAD // seals records and indexes
	Name [32]byte    // key of the records' names
}

const sealedIndexMagic = "DMIDXS1\n"

// name is the record name of object h: h itself in a plain store.
func (s *Store) name(h Hash) Hash {
	if s.seal == nil {
		return h
	}
	return seal.KeyedHash(&s.seal.Name, h[:])
}

func objectAD(name Hash) []byte {
	return append([]byte("dotmesh-store object\x00"), name[:]...)
}

func indexAD(packID string) []byte {
	return []byte("dotmesh-store index\x00" + packID)
}

// sealObject returns the record body of object h, whose stored bytes
// are comp.
func (s *Store) sealObject(h Hash, comp []byte) []byte {
	if s.seal == nil {
		return comp
	}
	out := make([]byte, 0, len(comp)+seal.Overhead(s.seal.AEAD))
	return seal.SealParts(s.seal.AEAD, out, objectAD(s.name(h)), comp)
}

// readObject reads object h's record (n bytes at off in f) and returns
// its stored bytes.
func (s *Store) readObject(f *os.File, off int64, n uint32, h Hash, path string, buf *[]byte) ([]byte, error) {
	name := s.name(h)
	body, err := readRecord(f, off, n, name, path, buf)
	if err != nil || s.seal == nil {
		return body, err
	}
	comp, err := seal.Open(s.seal.AEAD, body[:0:0], body, objectAD(name))
	if err != nil {
		return nil, fmt.Errorf("%w: object %s in %s: %v; run a check and restore it from a peer", dotmesh.ErrCorrupt, h, path, err)
	}
	return comp, nil
}

// encodeIndexOf is the index file of pack id holding es.
func (s *Store) encodeIndexOf(id string, es []entry) []byte {
	plain := encodeIndex(es)
	if s.seal == nil {
		return plain
	}
	out := make([]byte, 0, len(sealedIndexMagic)+len(plain)+seal.Overhead(s.seal.AEAD))
	out = append(out, sealedIndexMagic...)
	return seal.SealParts(s.seal.AEAD, out, indexAD(id), plain)
}

// indexOverhead is what sealing adds to an index file.
func (s *Store) indexOverhead() int64 {
	if s.seal == nil {
		return 0
	}
	return int64(len(sealedIndexMagic) + seal.Overhead(s.seal.AEAD))
}

// decodeIndexOf parses the index file of pack id, packSize bytes long.
func (s *Store) decodeIndexOf(id string, b []byte, packSize int64) ([]entry, error) {
	sealed := bytes.HasPrefix(b, []byte(sealedIndexMagic))
	switch {
	case s.seal == nil && sealed:
		return nil, fmt.Errorf("%w: pack %s is sealed, but the store is opened without a key", errMode, id)
	case s.seal == nil:
		return decodeIndex(b, packSize)
	case bytes.HasPrefix(b, []byte(indexMagic)):
		return nil, fmt.Errorf("%w: pack %s is not sealed, but the store is opened with a key", errMode, id)
	case !sealed:
		return nil, fmt.Errorf("%w: no sealed index header", errBadIndex)
	}
	plain, err := seal.Open(s.seal.AEAD, nil, b[len(sealedIndexMagic):], indexAD(id))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadIndex, err)
	}
	return decodeIndex(plain, packSize)
}

// errMode: a pack is sealed and the store opened without a key, or the
// other way round. Open fails rather than rebuild (and so rewrite) the
// index.
var errMode = fmt.Errorf("%w: plain and sealed store mixed", dotmesh.ErrCorrupt)

// rescan rebuilds the index of a pack from its records. In a sealed
// store the records name keyed hashes: each is opened and decoded to
// learn its object's hash, and one that does not open ends the scan.
func (s *Store) rescan(f *os.File, size int64, path string) ([]entry, error) {
	es, err := scanPack(f, size)
	if err != nil || s.seal == nil {
		return es, err
	}
	out := es[:0]
	var scratch []byte
	for _, e := range es {
		body, err := readRecord(f, e.off, e.n, e.h, path, nil)
		if err != nil {
			break
		}
		comp, err := seal.Open(s.seal.AEAD, nil, body, objectAD(e.h))
		if err != nil {
			s.log.Warn("sealed record does not open; the pack's index is rebuilt up to it", "path", path, "offset", e.off)
			break
		}
		if scratch, err = s.dec.DecodeAll(comp, scratch[:0]); err != nil || len(scratch) > MaxObjectSize {
			break
		}
		h := Sum(scratch)
		if s.name(h) != e.h {
			break
		}
		e.h = h
		out = append(out, e)
	}
	if len(out) == 0 && len(es) > 0 {
		// Not one record opens: another key, not damage. Keep the index.
		return nil, fmt.Errorf("%w: no object in %s opens with the store's key", dotmesh.ErrCorrupt, path)
	}
	return out, nil
}
