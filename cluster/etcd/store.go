package etcdstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/cluster/internal/txn"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const (
	defaultPrefix         = "/dotmesh/"
	defaultDialTimeout    = 5 * time.Second
	defaultRequestTimeout = 5 * time.Second

	// listPage bounds one range response, so that List of a huge prefix
	// never hits a gRPC message size limit. All pages are read at the
	// revision of the first, so List is still one consistent snapshot.
	listPage = 1000
	// watchBuffer is the capacity of each Watch channel; the etcd client
	// buffers further events itself.
	watchBuffer = 16
)

// Options configure Open. Only Endpoints is required.
type Options struct {
	// Endpoints are etcd client URLs, e.g. http://127.0.0.1:2379. Use
	// https:// URLs with CAFile for TLS.
	Endpoints []string
	// CAFile verifies etcd's server certificate (etcd --trusted-ca-file on
	// the server side is for client certificates). Empty: the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and key presented to
	// an etcd started with --client-cert-auth. Both or neither.
	CertFile, KeyFile string
	// Prefix is put in front of every key so that several clusters (or
	// tests) can share one etcd. A '/' is appended if missing. Default
	// "/dotmesh/".
	Prefix string
	// DialTimeout bounds establishing a connection. Default 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds every request, so that a call fails with
	// ErrUnavailable rather than hangs while etcd is down. Default 5s.
	RequestTimeout time.Duration
	// Logger receives warnings (lost watches). Default slog.Default().
	Logger *slog.Logger
}

// Store is a dotmesh.ClusterStore backed by etcd.
type Store struct {
	c          *clientv3.Client
	prefix     string
	endpoints  string
	urls       []string
	tls        *tls.Config
	reqTimeout time.Duration
	log        *slog.Logger

	// ctx ends at Close and ends every watch with it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // watch goroutines

	mu     sync.Mutex
	closed bool

	// mirrors are ListCached's watched copies, by prefix (mirror.go).
	mirrorMu sync.Mutex
	mirrors  map[string]*mirror
	// ranges counts the ranged reads of List and ListCached (tests).
	ranges atomic.Int64

	// watchStarted, when set (by tests), runs between reading the start
	// revision of a watch and starting the etcd watch.
	watchStarted func()
}

var _ dotmesh.ClusterStore = (*Store)(nil)

// Open connects to etcd and checks that it answers. When no endpoint
// answers within RequestTimeout, Open fails with an error wrapping
// dotmesh.ErrUnavailable; bad options or TLS files give
// dotmesh.ErrInvalidArgument.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: etcd store: no endpoints given (--etcd-endpoints)", dotmesh.ErrInvalidArgument)
	}
	if opts.Prefix == "" {
		opts.Prefix = defaultPrefix
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		// Without it, clusters "/a" and "/ab" would see each other's keys.
		opts.Prefix += "/"
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = defaultDialTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = defaultRequestTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	tlsConfig, err := tlsConfig(opts)
	if err != nil {
		return nil, err
	}
	endpoints := strings.Join(opts.Endpoints, ",")
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		TLS:         tlsConfig,
		// Keepalives notice a dead connection (a member killed without a
		// FIN, a network partition) so the balancer moves on.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// The etcd client logs retries at length; our errors say enough.
		Logger: zap.NewNop(),
		// gRPC backs off reconnects up to 2 minutes by default; a node
		// should be back within a second or two of etcd.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: etcd at %s: connect: %w: check --etcd-endpoints", dotmesh.ErrUnavailable, endpoints, err)
	}
	s := &Store{
		c:          c,
		prefix:     opts.Prefix,
		endpoints:  endpoints,
		urls:       opts.Endpoints,
		tls:        tlsConfig,
		reqTimeout: opts.RequestTimeout,
		log:        opts.Logger.With("store", "etcd", "endpoints", endpoints, "prefix", opts.Prefix),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	// The client connects lazily; a read proves that some endpoint answers
	// and has a leader (reads are linearizable).
	err = s.do(ctx, "probe", func(ctx context.Context) error {
		_, err := c.Get(ctx, s.prefix, clientv3.WithCountOnly())
		return err
	})
	if err != nil {
		s.cancel()
		c.Close()
		return nil, err
	}
	return s, nil
}

// tlsConfig builds the client TLS configuration, or nil when no TLS file
// is given.
func tlsConfig(opts Options) (*tls.Config, error) {
	if opts.CAFile == "" && opts.CertFile == "" && opts.KeyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --etcd-ca: %w", dotmesh.ErrInvalidArgument, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: --etcd-ca %s: no PEM certificate in it", dotmesh.ErrInvalidArgument, opts.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, fmt.Errorf("%w: --etcd-cert and --etcd-key go together; give both or neither", dotmesh.ErrInvalidArgument)
	}
	if opts.CertFile != "" {
		// Read both first so that a missing file is named as such.
		for _, f := range []struct{ flag, path string }{{"--etcd-cert", opts.CertFile}, {"--etcd-key", opts.KeyFile}} {
			if _, err := os.ReadFile(f.path); err != nil {
				return nil, fmt.Errorf("%w: etcd %s: %w", dotmesh.ErrInvalidArgument, f.flag, err)
			}
		}
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --etcd-cert %s / --etcd-key %s: %w", dotmesh.ErrInvalidArgument, opts.CertFile, opts.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Close ends every watch and closes the connection. Later calls fail with
// ErrUnavailable.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if err := s.c.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: etcd at %s: close: %w", dotmesh.ErrUnavailable, s.endpoints, err)
	}
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// do runs one request bounded by RequestTimeout and classifies its error.
func (s *Store) do(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return fmt.Errorf("%w: etcd store at %s is closed", dotmesh.ErrUnavailable, s.endpoints)
	}
	rctx, cancel := context.WithTimeout(ctx, s.reqTimeout)
	defer cancel()
	err := fn(rctx)
	if err == nil {
		return nil
	}
	return s.classify(ctx, what, err)
}

// classify maps an etcd client error to the dotmesh sentinels.
func (s *Store) classify(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		// The caller gave up: that is their error, not etcd's.
		return fmt.Errorf("etcd %s: %w", what, ctx.Err())
	}
	if s.isClosed() {
		return fmt.Errorf("%w: etcd store at %s is closed", dotmesh.ErrUnavailable, s.endpoints)
	}
	err = rpctypes.Error(err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Our RequestTimeout: with WaitForReady the client waits for a
		// connection, so a down etcd shows up as a deadline.
		return fmt.Errorf("%w: etcd at %s is unreachable: %s: no answer within %v%s: %s",
			dotmesh.ErrUnavailable, s.endpoints, what, s.reqTimeout, s.diagnose(), s.hint())
	}
	var code codes.Code
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else {
		code = status.Code(err)
	}
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return fmt.Errorf("%w: etcd %s: lease (expired or revoked; grant a new one): %w", dotmesh.ErrNotFound, what, err)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("%w: etcd at %s: %s: %w: compact and defragment etcd, then disarm the alarm", dotmesh.ErrUnavailable, s.endpoints, what, err)
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%w: etcd %s: %w (etcd --max-txn-ops)", dotmesh.ErrInvalidArgument, what, err)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%w: etcd %s: %w (etcd --max-request-bytes)", dotmesh.ErrInvalidArgument, what, err)
	case code == codes.InvalidArgument, code == codes.OutOfRange, code == codes.ResourceExhausted:
		return fmt.Errorf("%w: etcd %s: %w", dotmesh.ErrInvalidArgument, what, err)
	case code == codes.NotFound:
		return fmt.Errorf("%w: etcd %s: %w", dotmesh.ErrNotFound, what, err)
	case code == codes.Unauthenticated, code == codes.PermissionDenied:
		return fmt.Errorf("%w: etcd at %s: %s: %w: check the client certificate (--etcd-cert, --etcd-key)", dotmesh.ErrUnauthorized, s.endpoints, what, err)
	}
	// Unavailable (connection refused, no leader, timeouts inside etcd),
	// Internal and anything unknown: etcd cannot serve us right now.
	return fmt.Errorf("%w: etcd at %s is unreachable: %s: %w: %s",
		dotmesh.ErrUnavailable, s.endpoints, what, err, s.hint())
}

func (s *Store) hint() string {
	if s.tls != nil {
		return "check that etcd runs, --etcd-endpoints and the TLS files (--etcd-ca, --etcd-cert, --etcd-key)"
	}
	return "check that etcd runs and --etcd-endpoints"
}

func (s *Store) kv(kv *mvccpb.KeyValue) dotmesh.KV {
	return dotmesh.KV{
		Key:      strings.TrimPrefix(string(kv.Key), s.prefix),
		Value:    kv.Value, // decoded into its own buffer by the client
		Revision: kv.ModRevision,
		Lease:    dotmesh.LeaseID(kv.Lease),
	}
}

func checkKey(what, key string) error {
	if key == "" {
		return fmt.Errorf("%w: %s with an empty key", dotmesh.ErrInvalidArgument, what)
	}
	return nil
}

// ---- reads ----

// Get returns the key, or ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (dotmesh.KV, error) {
	if err := checkKey("get", key); err != nil {
		return dotmesh.KV{}, err
	}
	var resp *clientv3.GetResponse
	err := s.do(ctx, fmt.Sprintf("get %q", key), func(ctx context.Context) (err error) {
		resp, err = s.c.Get(ctx, s.prefix+key)
		return err
	})
	if err != nil {
		return dotmesh.KV{}, err
	}
	if len(resp.Kvs) == 0 {
		return dotmesh.KV{}, fmt.Errorf("%w: key %q", dotmesh.ErrNotFound, key)
	}
	return s.kv(resp.Kvs[0]), nil
}

// List returns every key with the prefix (a plain byte prefix), sorted, as
// one snapshot.
func (s *Store) List(ctx context.Context, prefix string) ([]dotmesh.KV, error) {
	kvs, _, err := s.list(ctx, prefix)
	return kvs, err
}

// list is List, with the revision it read at.
func (s *Store) list(ctx context.Context, prefix string) ([]dotmesh.KV, int64, error) {
	s.ranges.Add(1)
	var out []dotmesh.KV
	rev, err := s.pages(ctx, "list", prefix, false, func(resp *clientv3.GetResponse) {
		if out == nil {
			out = make([]dotmesh.KV, 0, int(resp.Count))
		}
		for _, kv := range resp.Kvs {
			out = append(out, s.kv(kv))
		}
	}, func() { out = nil })
	return out, rev, err
}

// ListKeys implements dotmesh.KeyLister: List without the values (etcd
// sends keys only), in pages read at the revision of the first.
func (s *Store) ListKeys(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	_, err := s.pages(ctx, "list keys", prefix, true, func(resp *clientv3.GetResponse) {
		for _, kv := range resp.Kvs {
			out = append(out, strings.TrimPrefix(string(kv.Key), s.prefix))
		}
	}, func() { out = nil })
	return out, err
}

// pages reads every key under prefix (keys only, or with values), in
// pages of listPage all read at the revision of the first, which it
// returns; page gets each answer. When etcd was compacted between pages
// it starts over at a new revision (after restart), at most three times.
func (s *Store) pages(ctx context.Context, what, prefix string, keysOnly bool, page func(*clientv3.GetResponse), restart func()) (int64, error) {
	from := s.prefix + prefix
	end := clientv3.GetPrefixRangeEnd(from)
	var rev int64
	for restarts := 0; ; {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if keysOnly {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		var resp *clientv3.GetResponse
		err := s.do(ctx, fmt.Sprintf("%s %q", what, prefix), func(ctx context.Context) (err error) {
			resp, err = s.c.Get(ctx, from, opts...)
			return err
		})
		if err != nil {
			if rev > 0 && restarts < 3 && errors.Is(err, rpctypes.ErrCompacted) {
				// Compacted between pages: start over at a new revision.
				restart()
				rev, from = 0, s.prefix+prefix
				restarts++
				continue
			}
			return 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		page(resp)
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// ---- writes ----

// Put writes the key unconditionally, detaching any lease (as etcd does).
func (s *Store) Put(ctx context.Context, key string, value []byte) (int64, error) {
	if err := checkKey("put", key); err != nil {
		return 0, err
	}
	var resp *clientv3.PutResponse
	err := s.do(ctx, fmt.Sprintf("put %q", key), func(ctx context.Context) (err error) {
		resp, err = s.c.Put(ctx, s.prefix+key, string(value))
		return err
	})
	if err != nil {
		return 0, err
	}
	s.wrote(resp.Header.Revision, key)
	return resp.Header.Revision, nil
}

// Delete removes the key; a missing key is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey("delete", key); err != nil {
		return err
	}
	var resp *clientv3.DeleteResponse
	err := s.do(ctx, fmt.Sprintf("delete %q", key), func(ctx context.Context) (err error) {
		resp, err = s.c.Delete(ctx, s.prefix+key)
		return err
	})
	if err == nil && resp.Deleted > 0 {
		s.wrote(resp.Header.Revision, key)
	}
	return err
}

// Txn applies ops atomically if every condition holds. When a condition
// fails, the else branch reads every condition's key at the same revision,
// so the error can say which one failed and why.
func (s *Store) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	if err := txn.Validate(conds, ops, 0); err != nil {
		return 0, err
	}
	cmps := make([]clientv3.Cmp, len(conds))
	reads := make([]clientv3.Op, len(conds))
	for i, c := range conds {
		k := s.prefix + c.Key
		if c.Revision == 0 {
			cmps[i] = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
		} else {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", c.Revision)
		}
		reads[i] = clientv3.OpGet(k, clientv3.WithKeysOnly())
	}
	writes := make([]clientv3.Op, len(ops))
	for i, op := range ops {
		k := s.prefix + op.Key
		switch {
		case op.Delete:
			writes[i] = clientv3.OpDelete(k)
		case op.Lease != 0:
			writes[i] = clientv3.OpPut(k, string(op.Value), clientv3.WithLease(clientv3.LeaseID(op.Lease)))
		default:
			writes[i] = clientv3.OpPut(k, string(op.Value))
		}
	}
	var resp *clientv3.TxnResponse
	err := s.do(ctx, "txn", func(ctx context.Context) (err error) {
		resp, err = s.c.Txn(ctx).If(cmps...).Then(writes...).Else(reads...).Commit()
		return err
	})
	if err != nil {
		return 0, err
	}
	if !resp.Succeeded {
		return 0, conflict(conds, resp)
	}
	changed := make([]string, 0, len(ops))
	for i, op := range ops {
		if op.Delete && (i >= len(resp.Responses) || resp.Responses[i].GetResponseDeleteRange().GetDeleted() == 0) {
			continue // a missing key: no change, no event
		}
		changed = append(changed, op.Key)
	}
	s.wrote(resp.Header.Revision, changed...)
	return resp.Header.Revision, nil
}

// conflict explains the first failed condition from the else branch reads.
func conflict(conds []dotmesh.Condition, resp *clientv3.TxnResponse) error {
	for i, c := range conds {
		var rev int64
		if i < len(resp.Responses) {
			if r := resp.Responses[i].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
				rev = r.Kvs[0].ModRevision
			}
		}
		switch {
		case c.Revision == 0 && rev != 0:
			return fmt.Errorf("%w: key %q exists (revision %d) but the txn required it to be absent; re-read it and retry",
				dotmesh.ErrConflict, c.Key, rev)
		case c.Revision != 0 && rev == 0:
			return fmt.Errorf("%w: key %q does not exist but the txn required revision %d; re-read it and retry",
				dotmesh.ErrConflict, c.Key, c.Revision)
		case c.Revision != 0 && rev != c.Revision:
			return fmt.Errorf("%w: key %q is at revision %d but the txn required revision %d; re-read it and retry",
				dotmesh.ErrConflict, c.Key, rev, c.Revision)
		}
	}
	// Unreachable unless etcd and the reads disagree.
	return fmt.Errorf("%w: txn conditions failed at revision %d; re-read and retry", dotmesh.ErrConflict, resp.Header.Revision)
}

// ---- watch ----

// Watch streams changes under prefix made after it returned; see the
// package comment for when the channel closes.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan dotmesh.Event, error) {
	// Every change after this revision is delivered, which covers every
	// change after Watch returns.
	var resp *clientv3.GetResponse
	err := s.do(ctx, fmt.Sprintf("watch %q", prefix), func(ctx context.Context) (err error) {
		resp, err = s.c.Get(ctx, s.prefix, clientv3.WithCountOnly())
		return err
	})
	if err != nil {
		return nil, err
	}
	rev := resp.Header.Revision
	if s.watchStarted != nil {
		s.watchStarted()
	}

	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel) // Close ends every watch
	// RequireLeader: a member cut off from the quorum ends the watch rather
	// than keep it open and silent.
	wch := s.c.Watch(clientv3.WithRequireLeader(wctx), s.prefix+prefix,
		clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	out := make(chan dotmesh.Event, watchBuffer)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer stop()
		defer cancel() // releases the etcd watch when we stop early
		for wresp := range wch {
			if err := wresp.Err(); err != nil || wresp.Canceled || wresp.CompactRevision != 0 {
				if wctx.Err() == nil {
					s.log.Warn("etcd ended a watch; the watcher must watch and list again",
						"watch_prefix", prefix, "last_revision", rev, "compact_revision", wresp.CompactRevision, "err", err)
				}
				return
			}
			for _, ev := range wresp.Events {
				e := dotmesh.Event{Type: dotmesh.EventPut, KV: s.kv(ev.Kv)}
				if ev.Type == clientv3.EventTypeDelete {
					// etcd sets a delete's ModRevision to the delete's
					// revision, as the contract wants.
					e.Type = dotmesh.EventDelete
					e.KV.Value, e.KV.Lease = nil, 0
				}
				select {
				case out <- e:
				case <-wctx.Done():
					return
				}
				rev = ev.Kv.ModRevision
			}
		}
	}()
	return out, nil
}

// ---- leases ----

// Grant creates a lease that expires after ttl, rounded up to whole
// seconds; etcd raises it further to its own minimum (about 1.5 election
// timeouts).
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (dotmesh.LeaseID, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("%w: lease ttl %v must be positive", dotmesh.ErrInvalidArgument, ttl)
	}
	secs := int64(math.Ceil(ttl.Seconds()))
	var resp *clientv3.LeaseGrantResponse
	err := s.do(ctx, "grant lease", func(ctx context.Context) (err error) {
		resp, err = s.c.Grant(ctx, secs)
		return err
	})
	if err != nil {
		return 0, err
	}
	return dotmesh.LeaseID(resp.ID), nil
}

// KeepAlive renews a lease once; ErrNotFound once it expired.
func (s *Store) KeepAlive(ctx context.Context, id dotmesh.LeaseID) error {
	return s.do(ctx, fmt.Sprintf("keep lease %d alive", id), func(ctx context.Context) error {
		_, err := s.c.KeepAliveOnce(ctx, clientv3.LeaseID(id))
		return err
	})
}

// Revoke ends a lease now, deleting its keys.
func (s *Store) Revoke(ctx context.Context, id dotmesh.LeaseID) error {
	return s.do(ctx, fmt.Sprintf("revoke lease %d", id), func(ctx context.Context) error {
		_, err := s.c.Revoke(ctx, clientv3.LeaseID(id))
		return err
	})
}

// diagnose says why the endpoints do not answer, when a request timed out:
// the etcd client waits for a connection and so hides "connection
// refused" or a TLS failure behind a deadline. It dials every endpoint at
// once, for at most diagnoseTimeout, and returns "" when all connect.
func (s *Store) diagnose() string {
	errs := make([]error, len(s.urls))
	var wg sync.WaitGroup
	for i, ep := range s.urls {
		wg.Go(func() { errs[i] = s.dial(ep) })
	}
	wg.Wait()
	var b strings.Builder
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(&b, "; %s: %v", s.urls[i], err)
		}
	}
	return b.String()
}

const diagnoseTimeout = time.Second

func (s *Store) dial(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil // unix sockets and odd forms: nothing to add
	}
	deadline := time.Now().Add(diagnoseTimeout)
	conn, err := net.DialTimeout("tcp", u.Host, diagnoseTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if u.Scheme != "https" {
		return nil
	}
	cfg := &tls.Config{}
	if s.tls != nil {
		cfg = s.tls.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = []string{"h2"}
	tc := tls.Client(conn, cfg)
	tc.SetDeadline(deadline)
	if err := tc.Handshake(); err != nil {
		return err
	}
	// With TLS 1.3 a refused client certificate only shows on the first
	// read, as an alert; a healthy server just sends nothing in time.
	tc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := tc.Read(make([]byte, 1)); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		return err
	}
	return nil
}
