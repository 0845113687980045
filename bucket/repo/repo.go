package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// ErrWrongPassword: no key of the repository opens with the password
// given. It wraps dotmesh.ErrUnauthorized.
var ErrWrongPassword = fmt.Errorf("%w: wrong password: no key of the repository opens with it", dotmesh.ErrUnauthorized)

// CorruptError: object Name failed a check; it is never returned as data.
// It wraps dotmesh.ErrCorrupt.
type CorruptError struct {
	Name string // the object in the store
	Err  error  // what failed
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v: object %s: %v", dotmesh.ErrCorrupt, e.Name, e.Err)
}

func (e *CorruptError) Unwrap() error { return dotmesh.ErrCorrupt }

func corrupt(name string, err error) error { return &CorruptError{Name: name, Err: err} }

// Size bounds of the small objects.
const (
	maxConfigSize = 64 << 10
	maxKeySize    = 64 << 10
	maxLockSize   = 64 << 10
)

// InitOptions configure a new repository.
type InitOptions struct {
	// Password seals the master key; a key file's bytes are passed here.
	// Required unless NoEncryption.
	Password []byte
	// NoEncryption stores objects in plain with checksums.
	NoEncryption bool
	// KDF derives the key from Password; zero means DefaultKDF.
	KDF KDFParams
	// Cipher is CipherAES256GCM (default: with AES-NI it seals about
	// twice as fast here; random 96-bit nonces are safe for 2^32 objects)
	// or CipherXChaCha20Poly1305 (no nonce bound, faster without AES-NI).
	Cipher string
	// Chunker is recorded for writers; zero means DefaultChunker.
	Chunker Chunker
}

// Options tune an open Repo.
type Options struct {
	Logger *slog.Logger
	// LockStaleAfter: a lock not refreshed for this long is stale
	// (default 30 minutes, as restic). Held locks refresh every quarter.
	LockStaleAfter time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Host and PID identify this process in locks; defaults are the
	// machine's.
	Host string
	PID  int
	// PackSize bounds a pack of blobs (default DefaultPackSize, at most
	// MaxObjectSize); PacksInFlight bounds the packs being filled or
	// uploaded at once (default 3; spooled to temporary files, so the
	// disk holds about PackSize*PacksInFlight, not the heap).
	PackSize      int
	PacksInFlight int
}

// Repo is an open repository. Its methods are safe for concurrent use.
type Repo struct {
	store  bucket.Store
	cfg    Config
	codec  *codec
	master []byte // nil without encryption
	keyID  string
	opts   Options
	log    *slog.Logger

	mu    sync.Mutex
	index *repoIndex // what is stored; nil until loaded
	pk    *packer
	// prefetch: the index objects read while Open derived the key;
	// nil once readIndex took them or they were dropped.
	prefetch *indexPrefetch
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LockStaleAfter <= 0 {
		o.LockStaleAfter = 30 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Host == "" {
		o.Host = defaultHost()
	}
	if o.PID == 0 {
		o.PID = defaultPID()
	}
	if o.PackSize <= 0 || o.PackSize > MaxObjectSize {
		o.PackSize = DefaultPackSize
	}
	if o.PacksInFlight <= 0 {
		o.PacksInFlight = 3
	}
	return o
}

func (r *Repo) now() time.Time { return r.opts.Now() }

// Init creates a repository in st, which must hold none, and returns it
// open. ErrAlreadyExists when st has a config.
func Init(ctx context.Context, st bucket.Store, o InitOptions, opts Options) (*Repo, error) {
	opts = opts.withDefaults()
	if _, err := st.Stat(ctx, configName); err == nil {
		return nil, fmt.Errorf("%w: %s holds a repository already", dotmesh.ErrAlreadyExists, st.Location())
	} else if !errors.Is(err, dotmesh.ErrNotFound) {
		return nil, err
	}
	var id [16]byte
	rand.Read(id[:])
	cfg := Config{Version: FormatVersion, ID: hex.EncodeToString(id[:]), Encrypted: !o.NoEncryption, Chunker: o.Chunker}
	if cfg.Chunker == (Chunker{}) {
		cfg.Chunker = DefaultChunker
	}
	if err := cfg.Chunker.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err)
	}
	r := &Repo{store: st, opts: opts, log: opts.Logger}
	var keys *keyring
	var keyBytes []byte
	if cfg.Encrypted {
		if len(o.Password) == 0 {
			return nil, fmt.Errorf("%w: an encrypted repository needs a password or key file", dotmesh.ErrInvalidArgument)
		}
		cfg.Cipher = o.Cipher
		if cfg.Cipher == "" {
			cfg.Cipher = CipherAES256GCM
		}
		r.master = make([]byte, 32)
		rand.Read(r.master)
		var err error
		if keys, err = newKeyring(r.master, cfg.Cipher); err != nil {
			return nil, fmt.Errorf("%w: %v", dotmesh.ErrInvalidArgument, err)
		}
		cfg.MAC = cfg.mac(keys.config)
		r.keyID = newKeyID()
		if keyBytes, err = newKeyFile(r.master, o.Password, o.KDF.OrDefault(), cfg.ID, keyName(r.keyID), opts.Now()); err != nil {
			return nil, err
		}
	} else if len(o.Password) > 0 {
		return nil, fmt.Errorf("%w: a password was given for a repository without encryption", dotmesh.ErrInvalidArgument)
	}
	r.cfg = cfg
	c, err := newCodec(keys)
	if err != nil {
		return nil, err
	}
	r.codec = c
	// The key first: a config without a key would be a locked repository.
	if keyBytes != nil {
		if err := st.Put(ctx, keyName(r.keyID), bytesReader(keyBytes), int64(len(keyBytes))); err != nil {
			c.close()
			return nil, err
		}
	}
	cb, _ := json.Marshal(cfg)
	err = st.Create(ctx, configName, bytesReader(cb), int64(len(cb)))
	if errors.Is(err, dotmesh.ErrNotSupported) {
		err = st.Put(ctx, configName, bytesReader(cb), int64(len(cb)))
	}
	if errors.Is(err, dotmesh.ErrAlreadyExists) {
		// A retried create whose first answer was lost finds its own
		// config (its random id makes it ours).
		if got, gerr := readSmall(ctx, st, configName, maxConfigSize); gerr == nil && bytes.Equal(got, cb) {
			err = nil
		}
	}
	if err != nil {
		if keyBytes != nil {
			st.Delete(context.WithoutCancel(ctx), keyName(r.keyID))
		}
		c.close()
		if errors.Is(err, dotmesh.ErrAlreadyExists) {
			return nil, fmt.Errorf("%w: %s holds a repository already", dotmesh.ErrAlreadyExists, st.Location())
		}
		return nil, err
	}
	r.index = newRepoIndex()
	r.pk = newPacker(r)
	return r, nil
}

// Open opens the repository in st with password (ignored when the
// repository is not encrypted). ErrWrongPassword when no key opens.
func Open(ctx context.Context, st bucket.Store, password []byte, opts Options) (*Repo, error) {
	opts = opts.withDefaults()
	b, err := readSmall(ctx, st, configName, maxConfigSize)
	if errors.Is(err, dotmesh.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s holds no repository (no config object)", dotmesh.ErrNotFound, st.Location())
	}
	if err != nil {
		return nil, err
	}
	cfg, err := parseConfig(b)
	if err != nil {
		return nil, corrupt(configName, err)
	}
	r := &Repo{store: st, cfg: cfg, opts: opts, log: opts.Logger}
	var keys *keyring
	if cfg.Encrypted {
		if len(password) == 0 {
			return nil, fmt.Errorf("%w: repository %s is encrypted: a password or key file is needed", dotmesh.ErrUnauthorized, st.Location())
		}
		// The index objects come while the key is derived: the
		// network is idle meanwhile, and a clone reads them first.
		pf := startIndexPrefetch(ctx, st)
		if keys, err = r.unlock(ctx, password); err != nil {
			pf.stop()
			return nil, err
		}
		r.prefetch = pf
	} else {
		// A plain config in a bucket with keys is a config swapped to
		// make writers store plaintext.
		ids, err := keyIDs(ctx, st)
		if err != nil {
			return nil, err
		}
		if len(ids) > 0 {
			return nil, corrupt(configName, errors.New("says the repository is not encrypted, but it has keys"))
		}
	}
	if r.codec, err = newCodec(keys); err != nil {
		return nil, err
	}
	r.pk = newPacker(r)
	return r, nil
}

// unlock tries every key with password and checks the config with the
// master key that opens.
func (r *Repo) unlock(ctx context.Context, password []byte) (*keyring, error) {
	ids, err := keyIDs(ctx, r.store)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, corrupt(keysDir, errors.New("an encrypted repository with no keys"))
	}
	var bad error
	for _, id := range ids {
		b, err := readSmall(ctx, r.store, keyName(id), maxKeySize)
		if errors.Is(err, dotmesh.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		k, err := parseKeyFile(b)
		if err != nil {
			bad = corrupt(keyName(id), err)
			r.log.Warn("repository key unreadable", "key", keyName(id), "err", err)
			continue
		}
		master, ok := unsealKey(k, password, r.cfg.ID, keyName(id))
		if !ok {
			continue
		}
		keys, err := newKeyring(master, r.cfg.Cipher)
		if err != nil {
			return nil, corrupt(configName, err)
		}
		if !r.cfg.checkMAC(keys.config) {
			return nil, corrupt(configName, errors.New("changed: its MAC does not match the repository's key"))
		}
		r.master, r.keyID = master, id
		return keys, nil
	}
	if bad != nil {
		return nil, fmt.Errorf("%w (and %v)", ErrWrongPassword, bad)
	}
	return nil, ErrWrongPassword
}

// Config returns the repository's config.
func (r *Repo) Config() Config { return r.cfg }

// Store returns the store the repository lives in.
func (r *Repo) Store() bucket.Store { return r.store }

// Close releases the Repo's resources (not the store's). Blobs not
// flushed are dropped: packs stored without an index are garbage.
func (r *Repo) Close() error {
	r.dropPrefetch()
	r.pk.close()
	r.codec.close()
	return nil
}

// readAllLimit reads r whole; more than limit bytes is corrupt.
func readAllLimit(r io.Reader, limit int64, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, corrupt(name, fmt.Errorf("larger than %d bytes", limit))
	}
	return b, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// get reads object name of kind and opens it.
func (r *Repo) get(ctx context.Context, kind byte, name string) ([]byte, error) {
	rc, err := r.store.Get(ctx, name, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := readAllLimit(rc, maxStored, name)
	if err != nil {
		return nil, err
	}
	pt, err := r.codec.open(kind, name, b)
	if err != nil {
		return nil, corrupt(name, err)
	}
	return pt, nil
}

// put seals body as object name of kind and writes it; create uses
// Store.Create.
func (r *Repo) put(ctx context.Context, kind byte, name string, body []byte, compress, create bool) error {
	if len(body) > MaxObjectSize {
		return fmt.Errorf("%w: %s object %s is %d bytes; at most %d are allowed", dotmesh.ErrInvalidArgument, kindName(kind), name, len(body), MaxObjectSize)
	}
	b := r.codec.seal(kind, name, body, compress)
	if create {
		return r.store.Create(ctx, name, bytesReader(b), int64(len(b)))
	}
	return r.store.Put(ctx, name, bytesReader(b), int64(len(b)))
}
