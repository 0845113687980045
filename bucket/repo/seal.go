package repo

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/dotmesh-io/dotmesh/internal/seal"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// Object kinds, as in every object's header.
const (
	kindBlob   byte = 1
	kindRecord byte = 2
	kindRef    byte = 3
	kindLock   byte = 4
)

const (
	objMagic    = "DMR"
	objVersion  = 1
	headerSize  = len(objMagic) + 3
	modePlain   = 0
	modeSealed  = 1
	encRaw      = 0
	encZstd     = 1
	checksumLen = sha256.Size

	// MaxObjectSize bounds the plaintext of a blob or record (chunks are
	// at most 4 MiB; anything bigger is chunked by the caller).
	MaxObjectSize = 16 << 20
	// maxStored bounds a stored object: the plaintext, zstd's worst case
	// expansion, header, nonce, tag or checksum.
	maxStored = MaxObjectSize + MaxObjectSize/64 + 4096
)

// Ciphers a repository may use.
const (
	CipherXChaCha20Poly1305 = seal.CipherXChaCha20Poly1305
	CipherAES256GCM         = seal.CipherAES256GCM
)

// keyring holds the subkeys derived from a master key; nil in a
// repository without encryption.
type keyring struct {
	aead      cipher.AEAD
	name      [32]byte // keyed BLAKE3 of blob names
	recordMAC []byte   // HMAC-SHA256 key of record tokens' IVs
	recordEnc cipher.Block
	config    []byte // HMAC-SHA256 key of the config
}

func subkey(master []byte, label string) ([]byte, error) {
	return seal.Subkey(master, "dotmesh-repo v1 "+label)
}

// newKeyring derives the subkeys of master for the cipher named.
func newKeyring(master []byte, cipherName string) (*keyring, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("master key is %d bytes, not 32", len(master))
	}
	k := &keyring{}
	sk, err := subkey(master, "seal")
	if err != nil {
		return nil, err
	}
	if k.aead, err = seal.NewAEAD(cipherName, sk); err != nil {
		return nil, err
	}
	name, err := subkey(master, "name")
	if err != nil {
		return nil, err
	}
	copy(k.name[:], name)
	if k.recordMAC, err = subkey(master, "record-mac"); err != nil {
		return nil, err
	}
	enc, err := subkey(master, "record-enc")
	if err != nil {
		return nil, err
	}
	if k.recordEnc, err = aes.NewCipher(enc); err != nil {
		return nil, err
	}
	if k.config, err = subkey(master, "config"); err != nil {
		return nil, err
	}
	return k, nil
}

// errOpen is why an object did not open; callers wrap it in a
// CorruptError naming the object.
var errOpen = errors.New("bad object")

// codec seals and opens objects; keys is nil without encryption.
type codec struct {
	keys *keyring
	enc  *zstd.Encoder
	dec  *zstd.Decoder
}

func newCodec(keys *keyring) (*codec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true))
	if err != nil {
		return nil, fmt.Errorf("create zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxObjectSize), zstd.WithDecoderMaxWindow(MaxObjectSize), zstd.WithDecoderConcurrency(0))
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	return &codec{keys: keys, enc: enc, dec: dec}, nil
}

func (c *codec) close() {
	c.enc.Close()
	c.dec.Close()
}

func header(kind, mode byte) []byte {
	return []byte{objMagic[0], objMagic[1], objMagic[2], objVersion, kind, mode}
}

// parseHeader checks an object's header and returns its kind and mode.
func parseHeader(b []byte) (kind, mode byte, err error) {
	if len(b) < headerSize {
		return 0, 0, fmt.Errorf("%w: %d bytes, shorter than a header", errOpen, len(b))
	}
	if string(b[:3]) != objMagic {
		return 0, 0, fmt.Errorf("%w: no %q magic", errOpen, objMagic)
	}
	if b[3] != objVersion {
		return 0, 0, fmt.Errorf("%w: format version %d is not known to this dotmesh (it knows %d)", errOpen, b[3], objVersion)
	}
	kind, mode = b[4], b[5]
	if kind < kindBlob || kind > kindLock {
		return 0, 0, fmt.Errorf("%w: unknown object kind %d", errOpen, kind)
	}
	if mode != modePlain && mode != modeSealed {
		return 0, 0, fmt.Errorf("%w: unknown mode %d", errOpen, mode)
	}
	return kind, mode, nil
}

// associated is what an object's seal or checksum binds besides its
// content: its header and its name.
func associated(hdr []byte, name string) []byte {
	ad := make([]byte, 0, len(hdr)+len(name))
	return append(append(ad, hdr...), name...)
}

// seal makes the stored form of body, an object of kind named name;
// compress tries zstd first and keeps it when it saves space.
func (c *codec) seal(kind byte, name string, body []byte, compress bool) []byte {
	if compress && len(body) > 64 && c.compressible(body) {
		z := c.enc.EncodeAll(body, make([]byte, 0, len(body)))
		if savesSpace(len(z), len(body)) {
			return c.sealEncoded(kind, name, encZstd, z)
		}
	}
	return c.sealEncoded(kind, name, encRaw, body)
}

// savesSpace says whether a zstd frame of n bytes is worth keeping over
// the plaintext's size bytes.
func savesSpace(n, size int) bool { return n < size-size/32 }

// sealEncoded makes the stored form of an object whose body is in
// encoding already (encRaw, or encZstd: a zstd frame).
func (c *codec) sealEncoded(kind byte, name string, encoding byte, body []byte) []byte {
	if c.keys == nil {
		hdr := header(kind, modePlain)
		out := make([]byte, 0, len(hdr)+1+len(body)+checksumLen)
		out = append(append(append(out, hdr...), encoding), body...)
		sum := plainSum(out, name)
		return append(out, sum[:]...)
	}
	hdr := header(kind, modeSealed)
	out := make([]byte, 0, len(hdr)+seal.Overhead(c.keys.aead)+1+len(body))
	out = append(out, hdr...)
	return seal.SealParts(c.keys.aead, out, associated(hdr, name), []byte{encoding}, body)
}

// compressible guesses from a sample whether zstd saves space on b:
// chunks of media or of compressed files are common, and trying them
// whole costs more than sealing them.
func (c *codec) compressible(b []byte) bool {
	const sample = 32 << 10
	if len(b) < 4*sample {
		return true
	}
	z := c.enc.EncodeAll(b[:sample], make([]byte, 0, sample))
	return len(z) < sample-sample/32
}

// plainSum is the checksum of a plain object: SHA-256 of its header,
// name, encoding and body (stored = everything but the checksum).
func plainSum(stored []byte, name string) [checksumLen]byte {
	h := sha256.New()
	h.Write(stored[:headerSize])
	h.Write([]byte(name))
	h.Write(stored[headerSize:])
	var s [checksumLen]byte
	h.Sum(s[:0])
	return s
}

// open checks and decodes the stored form of an object that should be of
// kind and named name, and returns its plaintext body.
func (c *codec) open(kind byte, name string, stored []byte) ([]byte, error) {
	pt, _, err := c.openFrame(kind, name, stored, false)
	return pt, err
}

// openFrame is open, also returning the zstd frame that the plaintext was
// decompressed from (nil for an object stored uncompressed). With inPlace
// a sealed object is opened in stored's memory, which the caller gives up
// (no second buffer to allocate and clear).
func (c *codec) openFrame(kind byte, name string, stored []byte, inPlace bool) ([]byte, []byte, error) {
	k, mode, err := parseHeader(stored)
	if err != nil {
		return nil, nil, err
	}
	if k != kind {
		return nil, nil, fmt.Errorf("%w: a %s object where a %s belongs", errOpen, kindName(k), kindName(kind))
	}
	var pt []byte
	switch {
	case c.keys == nil && mode == modePlain:
		if len(stored) < headerSize+1+checksumLen {
			return nil, nil, fmt.Errorf("%w: truncated (%d bytes)", errOpen, len(stored))
		}
		body := stored[:len(stored)-checksumLen]
		sum := plainSum(body, name)
		if subtle.ConstantTimeCompare(sum[:], stored[len(body):]) != 1 {
			return nil, nil, fmt.Errorf("%w: checksum mismatch (changed, truncated, renamed or swapped)", errOpen)
		}
		pt = body[headerSize:]
	case c.keys != nil && mode == modeSealed:
		ns := c.keys.aead.NonceSize()
		if len(stored) < headerSize+ns+c.keys.aead.Overhead()+1 {
			return nil, nil, fmt.Errorf("%w: truncated (%d bytes)", errOpen, len(stored))
		}
		hdr := stored[:headerSize]
		var dst []byte
		if inPlace { // exactly over the ciphertext, as cipher.AEAD allows
			dst = stored[headerSize+ns : headerSize+ns]
		}
		pt, err = seal.Open(c.keys.aead, dst, stored[headerSize:], associated(hdr, name))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errOpen, err)
		}
	case c.keys == nil:
		return nil, nil, fmt.Errorf("%w: sealed, but the repository is not encrypted", errOpen)
	default:
		return nil, nil, fmt.Errorf("%w: stored in plain in an encrypted repository", errOpen)
	}
	switch pt[0] {
	case encRaw:
		return pt[1:], nil, nil
	case encZstd:
		out, err := c.dec.DecodeAll(pt[1:], nil)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: decompress: %v", errOpen, err)
		}
		if len(out) > MaxObjectSize {
			return nil, nil, fmt.Errorf("%w: decompresses to more than %d bytes", errOpen, MaxObjectSize)
		}
		return out, pt[1:], nil
	}
	return nil, nil, fmt.Errorf("%w: unknown encoding %d", errOpen, pt[0])
}

func kindName(k byte) string {
	switch k {
	case kindBlob:
		return "blob"
	case kindRecord:
		return "record"
	case kindRef:
		return "ref"
	case kindLock:
		return "lock"
	}
	return fmt.Sprintf("kind-%d", k)
}

// ID names a blob in a repository (see the package doc).
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses 64 lowercase hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("blob id %q is not 64 hex digits", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return id, fmt.Errorf("blob id %q is not lowercase hex", s)
		}
	}
	_, err := hex.Decode(id[:], []byte(s))
	return id, err
}

// ContentHash is the BLAKE3-256 hash of a blob's plaintext, as the dump
// backend's chunk store keys chunks.
func ContentHash(data []byte) [32]byte { return blake3.Sum256(data) }

// blobID maps a content hash to the blob's ID.
func (c *codec) blobID(h [32]byte) ID {
	if c.keys == nil {
		return ID(h)
	}
	return ID(seal.KeyedHash(&c.keys.name, h[:]))
}

// BlobObject is the store object holding blob id (data/<2 hex>/<64
// hex>), the name Check's problems give.
func BlobObject(id ID) string {
	s := id.String()
	return "data/" + s[:2] + "/" + s
}

// token names a record or ref of kind in the store: a token per segment
// of the name, joined by slashes (package doc), so that the token of a
// name's first segments is the start of the name's token and a listing
// by a prefix of segments works.
func (c *codec) token(kind, name string) string {
	var b strings.Builder
	for i, seg := 0, name; ; i++ {
		part, rest, more := strings.Cut(seg, "/")
		if i > 0 {
			b.WriteByte('/')
		}
		if c.keys == nil {
			b.WriteString(hex.EncodeToString([]byte(part)))
		} else {
			iv := c.tokenIV(kind, name[:len(name)-len(rest)-b2i(more)])
			out := make([]byte, aes.BlockSize+len(part))
			copy(out, iv)
			cipher.NewCTR(c.keys.recordEnc, iv).XORKeyStream(out[aes.BlockSize:], []byte(part))
			b.WriteString(hex.EncodeToString(out))
		}
		if !more {
			return b.String()
		}
		seg = rest
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tokenIV is the synthetic IV of the segment that ends path (the name's
// segments up to it): bound to the kind and to its parents.
func (c *codec) tokenIV(kind, path string) []byte {
	m := hmac.New(sha256.New, c.keys.recordMAC)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(path))
	return m.Sum(nil)[:aes.BlockSize]
}

// untoken recovers the name of a record or ref of kind from its token.
func (c *codec) untoken(kind, tok string) (string, error) {
	var name strings.Builder
	for i, seg := 0, tok; ; i++ {
		part, rest, more := strings.Cut(seg, "/")
		b, err := hex.DecodeString(part)
		if err != nil || hex.EncodeToString(b) != part { // one name, one token
			return "", fmt.Errorf("%w: name token %.40q is not lowercase hex", errOpen, part)
		}
		if i > 0 {
			name.WriteByte('/')
		}
		if bytes.IndexByte(b, '/') >= 0 && c.keys == nil {
			return "", fmt.Errorf("%w: name token %.40q holds a slash", errOpen, part)
		}
		if c.keys == nil {
			name.Write(b)
		} else {
			if len(b) <= aes.BlockSize {
				return "", fmt.Errorf("%w: name token %.40q is shorter than an IV and a name", errOpen, part)
			}
			plain := make([]byte, len(b)-aes.BlockSize)
			cipher.NewCTR(c.keys.recordEnc, b[:aes.BlockSize]).XORKeyStream(plain, b[aes.BlockSize:])
			if bytes.IndexByte(plain, '/') >= 0 {
				return "", fmt.Errorf("%w: name token %.40q holds a slash", errOpen, part)
			}
			name.Write(plain)
			if !hmac.Equal(c.tokenIV(kind, name.String()), b[:aes.BlockSize]) {
				return "", fmt.Errorf("%w: name token %.40q does not authenticate", errOpen, part)
			}
		}
		if !more {
			return name.String(), validRecordName(name.String())
		}
		seg = rest
	}
}
