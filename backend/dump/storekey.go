package dump

import (
	"bytes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/seal"
)

// An encrypted store (Options.Encrypt) keeps its master key in
// DIR/store.key, sealed in one or more key slots under passwords
// (package internal/seal):
//
//	{"version":1, "id":"<32 hex>", "cipher":"aes-256-gcm",
//	 "keys":{"<16 hex>": slot, ...}, "mac":"<HMAC-SHA256 of the rest>"}
//
// The key file is written first, before anything else of the store, and
// replaced whole (temporary file, fsync, rename). A directory without it
// is a plain store; one with it opens only with a password; one with an
// interrupted first write of it (a temporary file left) opens neither
// way until it is initialised again with encryption.
const (
	keyFileName    = "store.key"
	keyFileTmp     = keyFileName + ".tmp"
	keyFileVersion = 1
	maxKeyFileSize = 1 << 20
	storeLabel     = "dotmesh-store v1 "
)

// ErrWrongPassword: no key slot of an encrypted store opens with the
// password given. It wraps dotmesh.ErrUnauthorized.
var ErrWrongPassword = fmt.Errorf("%w: wrong password: no key of the encrypted store opens with it", dotmesh.ErrUnauthorized)

type storeKeyFile struct {
	Version int                  `json:"version"`
	ID      string               `json:"id"`
	Cipher  string               `json:"cipher"`
	Keys    map[string]seal.Slot `json:"keys"`
	MAC     string               `json:"mac"`
}

// macOf authenticates what the slots do not: version, id, cipher and
// which slots exist, so a slot removed or a cipher changed is noticed.
func (k storeKeyFile) macOf(key []byte) string {
	ids := make([]string, 0, len(k.Keys))
	for id := range k.Keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%d\x00%s\x00%s", k.Version, k.ID, k.Cipher)
	for _, id := range ids {
		fmt.Fprintf(m, "\x00%s", id)
	}
	return hex.EncodeToString(m.Sum(nil))
}

func slotAD(storeID, slotID string) []byte {
	return []byte("dotmesh-store key\x00" + storeID + "\x00" + slotID)
}

// parseStoreKeyFile decodes and checks a key file.
func parseStoreKeyFile(b []byte) (storeKeyFile, error) {
	var k storeKeyFile
	if len(b) > maxKeyFileSize {
		return k, fmt.Errorf("key file is %d bytes, over %d", len(b), maxKeyFileSize)
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("key file is not JSON: %v", err)
	}
	if k.Version != keyFileVersion {
		return k, fmt.Errorf("key file has format version %d; this dotmesh knows version %d", k.Version, keyFileVersion)
	}
	if id, err := hex.DecodeString(k.ID); err != nil || len(id) != 16 {
		return k, fmt.Errorf("key file id %.40q is not 32 hex digits", k.ID)
	}
	if _, err := seal.NewAEAD(k.Cipher, make([]byte, seal.KeySize)); err != nil {
		return k, fmt.Errorf("key file: %v", err)
	}
	if len(k.Keys) == 0 {
		return k, errors.New("key file holds no key")
	}
	for id, s := range k.Keys {
		if b, err := hex.DecodeString(id); err != nil || len(b) != 8 {
			return k, fmt.Errorf("key id %.40q is not 16 hex digits", id)
		}
		sb, _ := json.Marshal(s)
		if _, err := seal.ParseSlot(sb, keyFileVersion); err != nil {
			return k, fmt.Errorf("key %s: %v", id, err)
		}
	}
	if len(k.MAC) != 64 {
		return k, errors.New("key file has no MAC")
	}
	return k, nil
}

// storeKeys are what an open encrypted store seals with.
type storeKeys struct {
	file   storeKeyFile
	master []byte
	slot   string // the slot that opened
	cas    *cas.Sealing
	files  cipher.AEAD // commit records, synced states, pins, sources
}

func newStoreKeys(k storeKeyFile, master []byte, slot string) (*storeKeys, error) {
	sub := func(label string) []byte {
		b, err := seal.Subkey(master, storeLabel+label)
		if err != nil {
			panic(err) // master is KeySize bytes: cannot fail
		}
		return b
	}
	objects, err := seal.NewAEAD(k.Cipher, sub("objects"))
	if err != nil {
		return nil, err
	}
	files, err := seal.NewAEAD(k.Cipher, sub("files"))
	if err != nil {
		return nil, err
	}
	sk := &storeKeys{file: k, master: master, slot: slot, cas: &cas.Sealing{AEAD: objects}, files: files}
	copy(sk.cas.Name[:], sub("names"))
	if !hmac.Equal([]byte(k.macOf(sub("config"))), []byte(k.MAC)) {
		return nil, fmt.Errorf("%w: %s was changed: its MAC does not match the store's key", dotmesh.ErrCorrupt, keyFileName)
	}
	return sk, nil
}

// openKeys decides whether dir is an encrypted store and opens its keys:
// nil for a plain store. It creates nothing.
func openKeys(dir string, opts Options) (*storeKeys, error) {
	b, err := os.ReadFile(filepath.Join(dir, keyFileName))
	if errors.Is(err, fs.ErrNotExist) {
		if _, terr := os.Stat(filepath.Join(dir, keyFileTmp)); terr == nil && !opts.Encrypt {
			return nil, fmt.Errorf("%w: the encrypted store in %s was never finished (its initialisation was interrupted); start it again with encryption and a password", dotmesh.ErrInvalidArgument, dir)
		}
		if _, terr := os.Stat(dir + initSuffix); terr == nil && !opts.Encrypt {
			return nil, fmt.Errorf("%w: the encrypted store %s was never finished (its initialisation was interrupted); start it again with encryption and a password", dotmesh.ErrInvalidArgument, dir)
		}
		if !opts.Encrypt && len(opts.Password) > 0 {
			return nil, fmt.Errorf("%w: the store in %s is not encrypted, but a password was given", dotmesh.ErrInvalidArgument, dir)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, keyFileName), err)
	}
	k, err := parseStoreKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", dotmesh.ErrCorrupt, filepath.Join(dir, keyFileName), err)
	}
	if len(opts.Password) == 0 {
		return nil, fmt.Errorf("%w: the store in %s is encrypted: a password is needed", dotmesh.ErrUnauthorized, dir)
	}
	ids := make([]string, 0, len(k.Keys))
	for id := range k.Keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if master, ok := k.Keys[id].Unseal(opts.Password, slotAD(k.ID, id)); ok {
			return newStoreKeys(k, master, id)
		}
	}
	return nil, ErrWrongPassword
}

// initSuffix names the directory a new encrypted store is made in before
// it is renamed into place, so that no crash leaves a directory that
// would open as a plain store.
const initSuffix = ".dminit"

// initKeys makes dir an encrypted store with one key slot for
// opts.Password. dir must hold no store.
func initKeys(dir string, opts Options, mode os.FileMode) error {
	if len(opts.Password) == 0 {
		return fmt.Errorf("%w: an encrypted store needs a password", dotmesh.ErrInvalidArgument)
	}
	if plain, err := holdsStore(dir); err != nil {
		return err
	} else if plain {
		return fmt.Errorf("%w: %s holds a store that is not encrypted; it cannot be encrypted in place: push its dots to a new encrypted node", dotmesh.ErrInvalidArgument, dir)
	}
	cipherName := opts.Cipher
	if cipherName == "" {
		cipherName = seal.CipherAES256GCM
	}
	var id [16]byte
	seal.Random(id[:])
	k := storeKeyFile{Version: keyFileVersion, ID: hex.EncodeToString(id[:]), Cipher: cipherName, Keys: map[string]seal.Slot{}}
	if _, err := seal.NewAEAD(cipherName, make([]byte, seal.KeySize)); err != nil {
		return fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err)
	}
	master := seal.NewMaster()
	if err := k.addSlot(master, opts.Password, opts.KDF); err != nil {
		return err
	}
	data, err := k.marshal(master)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		// Made aside and renamed in: dir exists only with its key file.
		tmp := dir + initSuffix
		if err := os.RemoveAll(tmp); err != nil {
			return err
		}
		if err := os.MkdirAll(tmp, mode); err != nil {
			return fmt.Errorf("create encrypted store: %w", err)
		}
		if err := writeFileAtomic(tmp, keyFileName, data, true); err != nil {
			return fmt.Errorf("write %s: %w", keyFileName, err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("create encrypted store: %w", err)
		}
		return syncDirectory(filepath.Dir(dir))
	}
	if err := markEncrypting(dir); err != nil {
		return err
	}
	if err := writeFileAtomic(dir, keyFileName, data, true); err != nil {
		return fmt.Errorf("write %s: %w", keyFileName, err)
	}
	if err := os.Remove(filepath.Join(dir, keyFileTmp)); err != nil {
		return err
	}
	return os.RemoveAll(dir + initSuffix)
}

// markEncrypting marks the existing directory dir, which holds no store,
// as becoming an encrypted store: the first thing written, so that an
// interruption before the key file leaves a sign that refuses a plain
// open.
func markEncrypting(dir string) error {
	if plain, err := holdsStore(dir); err != nil {
		return err
	} else if plain {
		return fmt.Errorf("%w: %s holds a store that is not encrypted; it cannot be encrypted in place: push its dots to a new encrypted node", dotmesh.ErrInvalidArgument, dir)
	}
	f, err := os.OpenFile(filepath.Join(dir, keyFileTmp), os.O_WRONLY|os.O_CREATE, privateFile)
	if err != nil {
		return fmt.Errorf("mark %s as becoming encrypted: %w", dir, err)
	}
	f.Close()
	return syncDirectory(dir)
}

// holdsStore reports whether dir holds a dump store's data (objects or
// branches).
func holdsStore(dir string) (bool, error) {
	for _, sub := range []string{"store/packs", "branches", "store/objects"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("look into %s: %w", dir, err)
		}
		if len(ents) > 0 {
			return true, nil
		}
	}
	return false, nil
}

func (k *storeKeyFile) addSlot(master, password []byte, params seal.KDFParams) error {
	var sid [8]byte
	seal.Random(sid[:])
	id := hex.EncodeToString(sid[:])
	s, err := seal.NewSlot(master, password, params.OrDefault(), slotAD(k.ID, id), keyFileVersion, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err)
	}
	if k.Keys == nil {
		k.Keys = map[string]seal.Slot{}
	}
	k.Keys[id] = s
	return nil
}

// marshal sets the MAC under master and encodes the file.
func (k storeKeyFile) marshal(master []byte) ([]byte, error) {
	ck, err := seal.Subkey(master, storeLabel+"config")
	if err != nil {
		return nil, err
	}
	k.MAC = k.macOf(ck)
	return json.MarshalIndent(k, "", "  ")
}

// Sealed files (commit records, synced states, pins, sources) in an
// encrypted store: "DMSEAL1\n" | nonce | AEAD(content), bound to what
// the file is (its kind and, for a commit record, the commit id).
const sealedFileMagic = "DMSEAL1\n"

// sealFile returns the stored form of a file of kind what.
func (b *Backend) sealFile(what string, data []byte) []byte {
	if b.keys == nil {
		return data
	}
	out := make([]byte, 0, len(sealedFileMagic)+len(data)+seal.Overhead(b.keys.files))
	out = append(out, sealedFileMagic...)
	return seal.SealParts(b.keys.files, out, []byte(what), data)
}

// openFile returns the content of a file of kind what stored as stored.
func (b *Backend) openFile(what string, stored []byte) ([]byte, error) {
	sealed := bytes.HasPrefix(stored, []byte(sealedFileMagic))
	switch {
	case b.keys == nil && sealed:
		return nil, fmt.Errorf("%w: a sealed %s in a store that is not encrypted", dotmesh.ErrCorrupt, what)
	case b.keys == nil:
		return stored, nil
	case !sealed:
		return nil, fmt.Errorf("%w: a %s in plain in an encrypted store", dotmesh.ErrCorrupt, what)
	}
	out, err := seal.Open(b.keys.files, nil, stored[len(sealedFileMagic):], []byte(what))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", dotmesh.ErrCorrupt, what, err)
	}
	return out, nil
}

// Encrypted reports whether the backend's store is encrypted.
func (b *Backend) Encrypted() bool { return b.keys != nil }

// IsEncrypted reports whether the dump directory dir holds an encrypted
// store (its key file), without opening it.
func IsEncrypted(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, keyFileName))
	return err == nil
}

// KeyInfo describes a key slot of an encrypted store.
type KeyInfo struct {
	ID      string
	Created time.Time
	KDF     seal.KDFParams
	InUse   bool // the slot the store was opened with
}

// Keys lists the key slots of the encrypted store.
func (b *Backend) Keys() ([]KeyInfo, error) {
	if b.keys == nil {
		return nil, fmt.Errorf("%w: the store in %s is not encrypted and has no keys", dotmesh.ErrNotSupported, b.dir)
	}
	b.keyMu.Lock()
	defer b.keyMu.Unlock()
	var out []KeyInfo
	for id, s := range b.keys.file.Keys {
		out = append(out, KeyInfo{ID: id, Created: s.Created, KDF: s.KDF, InUse: id == b.keys.slot})
	}
	slices.SortFunc(out, func(a, c KeyInfo) int { return a.Created.Compare(c.Created) })
	return out, nil
}

// AddKey adds a key slot opening the store with password (params zero:
// the default KDF) and returns its id.
func (b *Backend) AddKey(password []byte, params seal.KDFParams) (string, error) {
	if b.keys == nil {
		return "", fmt.Errorf("%w: the store in %s is not encrypted and has no keys", dotmesh.ErrNotSupported, b.dir)
	}
	if len(password) == 0 {
		return "", fmt.Errorf("%w: the new password is empty", dotmesh.ErrInvalidArgument)
	}
	b.keyMu.Lock()
	defer b.keyMu.Unlock()
	k := b.keys.file
	k.Keys = maps.Clone(k.Keys)
	before := len(k.Keys)
	if err := k.addSlot(b.keys.master, password, params); err != nil {
		return "", err
	}
	var id string
	for sid := range k.Keys {
		if _, ok := b.keys.file.Keys[sid]; !ok {
			id = sid
		}
	}
	if len(k.Keys) != before+1 || id == "" {
		return "", errors.New("key slot id collision; try again")
	}
	return id, b.saveKeys(k)
}

// RemoveKey removes key slot id. The store's last key never goes; the
// one it was opened with only with force.
func (b *Backend) RemoveKey(id string, force bool) error {
	if b.keys == nil {
		return fmt.Errorf("%w: the store in %s is not encrypted and has no keys", dotmesh.ErrNotSupported, b.dir)
	}
	b.keyMu.Lock()
	defer b.keyMu.Unlock()
	k := b.keys.file
	if _, ok := k.Keys[id]; !ok {
		return fmt.Errorf("%w: the store has no key %q", dotmesh.ErrNotFound, id)
	}
	if len(k.Keys) == 1 {
		return fmt.Errorf("%w: key %s is the store's only key; without it nothing in the store can be read again", dotmesh.ErrInUse, id)
	}
	if id == b.keys.slot && !force {
		return fmt.Errorf("%w: key %s is the one this node opened the store with", dotmesh.ErrInUse, id)
	}
	k.Keys = maps.Clone(k.Keys)
	delete(k.Keys, id)
	return b.saveKeys(k)
}

// saveKeys replaces the key file with k; b.keyMu is held.
func (b *Backend) saveKeys(k storeKeyFile) error {
	data, err := k.marshal(b.keys.master)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(b.dir, keyFileName, data, true); err != nil {
		return fmt.Errorf("write %s: %w", keyFileName, err)
	}
	b.keys.file = k
	return nil
}

// CheckPassword reports whether password opens the encrypted store in
// dir (ErrWrongPassword when not), reading its key file only.
func CheckPassword(dir string, password []byte) error {
	if !IsEncrypted(dir) {
		return fmt.Errorf("%w: the store in %s is not encrypted", dotmesh.ErrInvalidArgument, dir)
	}
	_, err := openKeys(dir, Options{Password: password})
	return err
}
