package repo

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Packs (package doc): many sealed blobs in one object, then the
// sealed header listing them, its length and a magic.
const (
	packsDir = "packs/"
	// DefaultPackSize bounds a pack (unless one blob is bigger): about
	// restic's, few objects per GiB while a ranged read still gets one
	// blob, and under bucket/s3's PartSize, so that a pack goes up in one
	// request.
	DefaultPackSize = 16<<20 - 64<<10
	packMagic       = "DMPK"
	packTrailer     = 4 + len(packMagic) // header length, magic
	packVersion     = 1
	// packEntrySize bounds an entry of a pack header or index from below
	// (an ID and two one-byte varints): counts are checked against it.
	packEntrySize = 32 + 2
	// maxPackSize bounds a stored pack: a pack is closed once it reaches
	// its target (at most MaxObjectSize), so the last blob may overshoot
	// by one stored object, and the header follows.
	maxPackSize   = MaxObjectSize + maxStored + maxHeaderSize
	maxHeaderSize = 16 << 20
)

// packEntry is one blob of a pack: where its sealed form lies.
type packEntry struct {
	ID     ID
	Offset uint32
	Length uint32
}

func (e packEntry) end() int64 { return int64(e.Offset) + int64(e.Length) }

// PackObject is the store object of pack id (packs/<2 hex>/<64 hex>).
// Pack IDs are random, so a name reveals nothing of what it holds.
func PackObject(id ID) string {
	s := id.String()
	return packsDir + s[:2] + "/" + s
}

// ParsePackObject is the pack ID whose store object is name; names of
// other objects are an error.
func ParsePackObject(name string) (ID, error) {
	rest, ok := strings.CutPrefix(name, packsDir)
	if !ok || len(rest) != 3+64 || rest[2] != '/' || rest[:2] != rest[3:5] {
		return ID{}, errors.New("not packs/<2 hex>/<64 hex>")
	}
	return ParseID(rest[3:])
}

func newPackID() ID {
	var id ID
	rand.Read(id[:])
	return id
}

// packHeaderName is what a pack's header is sealed as: bound to its pack,
// so a header moved to another pack does not open.
func packHeaderName(pack string) string { return pack + "#header" }

// appendEntries encodes entries (count, then ID, offset, length each).
func appendEntries(b []byte, es []packEntry) []byte {
	b = binary.AppendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = append(b, e.ID[:]...)
		b = binary.AppendUvarint(b, uint64(e.Offset))
		b = binary.AppendUvarint(b, uint64(e.Length))
	}
	return b
}

// readEntries decodes what appendEntries wrote from b and returns the
// rest; limit bounds offset+length of every entry.
func readEntries(b []byte, limit int64) ([]packEntry, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, errors.New("no entry count")
	}
	b = b[k:]
	if n > uint64(len(b)/packEntrySize) {
		return nil, nil, fmt.Errorf("%d entries do not fit in %d bytes", n, len(b))
	}
	es := make([]packEntry, n)
	for i := range es {
		if len(b) < 32 {
			return nil, nil, fmt.Errorf("entry %d is truncated", i)
		}
		copy(es[i].ID[:], b)
		b = b[32:]
		off, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, nil, fmt.Errorf("entry %d has no offset", i)
		}
		b = b[k:]
		ln, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, nil, fmt.Errorf("entry %d has no length", i)
		}
		b = b[k:]
		if ln == 0 || off > uint64(limit) || ln > uint64(limit)-off {
			return nil, nil, fmt.Errorf("entry %d (offset %d, length %d) lies outside %d bytes", i, off, ln, limit)
		}
		es[i].Offset, es[i].Length = uint32(off), uint32(ln)
	}
	return es, b, nil
}

// encodePackHeader is the plaintext of a pack's header.
func encodePackHeader(es []packEntry) []byte {
	return appendEntries([]byte{packVersion}, es)
}

// decodePackHeader decodes a pack header's plaintext whose sealed form
// starts at byte blobsEnd of the pack: the blobs must tile the pack from
// byte 0 to there, in order.
func decodePackHeader(b []byte, blobsEnd int64) ([]packEntry, error) {
	if len(b) == 0 || b[0] != packVersion {
		return nil, errors.New("pack header: unknown version")
	}
	es, rest, err := readEntries(b[1:], blobsEnd)
	if err != nil {
		return nil, fmt.Errorf("pack header: %v", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("pack header: %d bytes after its entries", len(rest))
	}
	var at int64
	for i, e := range es {
		if int64(e.Offset) != at {
			return nil, fmt.Errorf("pack header: blob %d starts at %d, not at %d where the one before ends", i, e.Offset, at)
		}
		at = e.end()
	}
	if at != blobsEnd {
		return nil, fmt.Errorf("pack header: its blobs end at %d, the header starts at %d", at, blobsEnd)
	}
	return es, nil
}

// packTail parses a pack's last packTrailer bytes: the header's stored
// length; size is the pack's.
func packTail(tail []byte, size int64) (hdrLen int64, err error) {
	if len(tail) != packTrailer || string(tail[4:]) != packMagic {
		return 0, fmt.Errorf("%w: no pack trailer (truncated, or not a pack)", errOpen)
	}
	hdrLen = int64(binary.LittleEndian.Uint32(tail))
	if hdrLen > maxHeaderSize || hdrLen > size-int64(packTrailer) {
		return 0, fmt.Errorf("%w: pack header of %d bytes does not fit the pack's %d", errOpen, hdrLen, size)
	}
	return hdrLen, nil
}

// openPackHeader opens the sealed header of pack name (its stored form
// hdr, which starts at byte blobsEnd) and decodes it.
func (c *codec) openPackHeader(name string, hdr []byte, blobsEnd int64) ([]packEntry, error) {
	pt, err := c.open(kindRecord, packHeaderName(name), hdr)
	if err != nil {
		return nil, err
	}
	es, err := decodePackHeader(pt, blobsEnd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errOpen, err)
	}
	return es, nil
}

// parsePack checks a whole stored pack: its header, and every blob
// opens as the blob its entry names. It returns the entries and the IDs
// of the blobs that failed (with the first failure), or an error when
// the header does not open.
func (c *codec) parsePack(name string, b []byte) (es []packEntry, bad []ID, firstBad error, err error) {
	if len(b) < packTrailer {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes, shorter than a pack trailer", errOpen, len(b))
	}
	size := int64(len(b))
	hl, err := packTail(b[size-int64(packTrailer):], size)
	if err != nil {
		return nil, nil, nil, err
	}
	blobsEnd := size - int64(packTrailer) - hl
	if es, err = c.openPackHeader(name, b[blobsEnd:size-int64(packTrailer)], blobsEnd); err != nil {
		return nil, nil, nil, err
	}
	for _, e := range es {
		if err := c.openBlob(e.ID, b[e.Offset:e.end()]); err != nil {
			bad = append(bad, e.ID)
			if firstBad == nil {
				firstBad = fmt.Errorf("blob %s at offset %d: %w", e.ID, e.Offset, err)
			}
		}
	}
	return es, bad, firstBad, nil
}

// openBlobData opens the stored form of blob id and checks it against
// the ID; the error is to be wrapped naming the object holding it.
func (c *codec) openBlobData(id ID, stored []byte) ([]byte, error) {
	data, _, err := c.openBlobFrame(id, stored, false)
	return data, err
}

// openBlobFrame is openBlobData, also returning the zstd frame the blob
// was decompressed from (nil when stored uncompressed); inPlace as
// openFrame's.
func (c *codec) openBlobFrame(id ID, stored []byte, inPlace bool) ([]byte, []byte, error) {
	data, frame, err := c.openFrame(kindBlob, BlobObject(id), stored, inPlace)
	if err != nil {
		return nil, nil, err
	}
	if got := c.blobID(ContentHash(data)); got != id {
		return nil, nil, fmt.Errorf("%w: holds blob %s", errOpen, got)
	}
	return data, frame, nil
}

func (c *codec) openBlob(id ID, stored []byte) error {
	_, err := c.openBlobData(id, stored)
	return err
}

// sealPack ends a pack whose blobs are buf: the sealed header of es,
// its length and the magic are appended.
func (c *codec) sealPack(name string, buf []byte, es []packEntry) []byte {
	hdr := c.seal(kindRecord, packHeaderName(name), encodePackHeader(es), true)
	buf = append(buf, hdr...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(hdr)))
	return append(buf, packMagic...)
}
