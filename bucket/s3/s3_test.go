package s3_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/buckettest"
	"github.com/dotmesh-io/dotmesh/bucket/s3"
	"github.com/dotmesh-io/dotmesh/bucket/s3test"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// shared is the server of TestS3's subtests.
var shared *s3test.Server

// TestMain stops the SeaweedFS server TestS3 and
// TestServerKilledMidUpload share (in turn, a prefix each).
func TestMain(m *testing.M) {
	code := m.Run()
	s3test.CloseShared()
	os.Exit(code)
}

func server(t *testing.T) *s3test.Server {
	t.Helper()
	if shared == nil {
		t.Fatal("no shared SeaweedFS server: run the tests through TestS3")
	}
	return shared
}

var prefixes atomic.Int64

func freshPrefix(t *testing.T) string {
	return fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, prefixes.Add(1))
}

// TestS3 runs the conformance suite and the server-sharing tests against
// one SeaweedFS.
func TestS3(t *testing.T) {
	shared = s3test.Shared(t)
	defer func() { shared = nil }()
	t.Run("Conformance", func(t *testing.T) {
		buckettest.Run(t, func(t *testing.T) bucket.Store {
			s, err := bucket.Open(context.Background(), shared.URL(freshPrefix(t)), shared.Config())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, buckettest.Options{})
	})
	t.Run("ConditionalWrites", testConditionalWrites)
	t.Run("WrongCredentials", testWrongCredentials)
	t.Run("ReadOnlyCredentials", testReadOnlyCredentials)
	t.Run("MissingBucket", testMissingBucket)
	t.Run("TruncatedBody", testTruncatedBody)
	t.Run("Location", testLocation)
	t.Run("ForeignObjects", testForeignObjects)
	t.Run("UnsignedPayload", testUnsignedPayload)
}

// SeaweedFS honours If-None-Match: Create is atomic there.
func testConditionalWrites(t *testing.T) {
	st := server(t).Open(t, freshPrefix(t))
	ctx := context.Background()
	if err := st.Create(ctx, "c", strings.NewReader("1"), 1); err != nil {
		t.Fatalf("Create on SeaweedFS: %v", err)
	}
	if err := st.Create(ctx, "c", strings.NewReader("2"), 1); !errors.Is(err, dotmesh.ErrAlreadyExists) {
		t.Fatalf("second Create on SeaweedFS: %v, want ErrAlreadyExists", err)
	}
}

func testWrongCredentials(t *testing.T) {
	ctx := context.Background()
	srv := server(t)
	for _, c := range []struct {
		name, access, secret, says string
	}{
		{"WrongSecret", s3test.AccessKey, "not-the-secret", "secret key"},
		{"UnknownKey", "nosuchaccesskey", "whatever", "access key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := srv.Config()
			cfg.AccessKey, cfg.SecretKey = c.access, c.secret
			st, err := s3.Open(ctx, s3test.BucketName, freshPrefix(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for op, err := range map[string]error{
				"put":  st.Put(ctx, "o", strings.NewReader("x"), 1),
				"list": st.List(ctx, "", func(bucket.ObjectInfo) error { return nil }),
				"stat": func() error { _, err := st.Stat(ctx, "o"); return err }(),
			} {
				if !errors.Is(err, dotmesh.ErrPermissionDenied) || strings.Contains(err.Error(), "\n") {
					t.Errorf("%s with %s: %v, want a one-line ErrPermissionDenied", op, c.name, err)
					continue
				}
				if op != "stat" && !strings.Contains(err.Error(), c.says) {
					t.Errorf("%s with %s: %q does not say to check the %s", op, c.name, err, c.says)
				}
			}
		})
	}
}

func testReadOnlyCredentials(t *testing.T) {
	ctx := context.Background()
	srv := server(t)
	prefix := freshPrefix(t)
	rw := srv.Open(t, prefix)
	if err := rw.Put(ctx, "kept", strings.NewReader("data"), 4); err != nil {
		t.Fatal(err)
	}
	ro, err := s3.Open(ctx, s3test.BucketName, prefix, srv.ReadOnlyConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rc, err := ro.Get(ctx, "kept", 0, -1)
	if err != nil {
		t.Fatalf("read-only credentials reading: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "data" {
		t.Fatalf("read %q", b)
	}
	for op, err := range map[string]error{
		"put":      ro.Put(ctx, "new", strings.NewReader("x"), 1),
		"put over": ro.Put(ctx, "kept", strings.NewReader("y"), 1),
		"create":   ro.Create(ctx, "new2", strings.NewReader("x"), 1),
		"delete":   ro.Delete(ctx, "kept"),
	} {
		if !errors.Is(err, dotmesh.ErrPermissionDenied) || !strings.Contains(err.Error(), "check that the credentials may read and write") {
			t.Errorf("%s with read-only credentials: %v, want ErrPermissionDenied with advice", op, err)
		}
		var be *bucket.Error
		if !errors.As(err, &be) || be.Location != ro.Location() {
			t.Errorf("%s: %v is no *bucket.Error naming the store", op, err)
		}
	}
	rc, err = rw.Get(ctx, "kept", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rc)
	rc.Close()
	if string(b) != "data" {
		t.Fatalf("refused writes changed the object to %q", b)
	}
	if _, err := rw.Stat(ctx, "new"); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("a refused put left an object: %v", err)
	}
}

func testMissingBucket(t *testing.T) {
	ctx := context.Background()
	st, err := bucket.Open(ctx, "s3://no-such-bucket-here/p", server(t).Config())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for op, err := range map[string]error{
		"put":  st.Put(ctx, "o", strings.NewReader("x"), 1),
		"list": st.List(ctx, "", func(bucket.ObjectInfo) error { return nil }),
		"get":  func() error { _, err := st.Get(ctx, "o", 0, -1); return err }(),
	} {
		if !errors.Is(err, dotmesh.ErrNotFound) || !strings.Contains(err.Error(), "bucket no-such-bucket-here does not exist") || !strings.Contains(err.Error(), "create it") {
			t.Errorf("%s in a missing bucket: %v, want ErrNotFound naming the bucket, with advice", op, err)
		}
	}
}

// cutProxy forwards TCP to the server, but ends each response to a GET
// after the headers and cut bytes of body, as a dropped connection does.
func cutProxy(t *testing.T, backend string, cut int) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go io.Copy(b, c)
				r := bufio.NewReader(b)
				var head bytes.Buffer
				for {
					line, err := r.ReadString('\n')
					head.WriteString(line)
					if err != nil || line == "\r\n" {
						break
					}
				}
				c.Write(head.Bytes())
				io.CopyN(c, r, int64(cut))
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

func testTruncatedBody(t *testing.T) {
	ctx := context.Background()
	srv := server(t)
	prefix := freshPrefix(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	if err := srv.Open(t, prefix).Put(ctx, "big", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config()
	cfg.Endpoint = cutProxy(t, strings.TrimPrefix(srv.Endpoint, "http://"), 1000)
	st, err := s3.Open(ctx, s3test.BucketName, prefix, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, r := range []struct{ off, length int64 }{{0, -1}, {100, 20000}} {
		rc, err := st.Get(ctx, "big", r.off, r.length)
		if err != nil {
			t.Fatalf("Get through the cutting proxy: %v", err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if !errors.Is(err, dotmesh.ErrCorrupt) || n != 1000 {
			t.Fatalf("reading a body cut after 1000 bytes: %d bytes, %v; want ErrCorrupt", n, err)
		}
		var be *bucket.Error
		if !errors.As(err, &be) || be.Name != "big" || be.Op != "get" {
			t.Fatalf("%v does not name the get of big", err)
		}
	}
}

func testLocation(t *testing.T) {
	srv := server(t)
	st := srv.Open(t, "p/q")
	if want := "s3://" + s3test.BucketName + "/p/q at " + srv.Endpoint; st.Location() != want {
		t.Fatalf("Location = %q, want %q", st.Location(), want)
	}
	if strings.Contains(st.Location(), s3test.SecretKey) || strings.Contains(st.Location(), s3test.AccessKey) {
		t.Fatal("Location shows credentials")
	}
}

// Objects another tool put under the prefix, with names no store object
// has, are left out of listings.
func testForeignObjects(t *testing.T) {
	ctx := context.Background()
	srv := server(t)
	prefix := freshPrefix(t)
	whole, err := s3.Open(ctx, s3test.BucketName, "", srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	whole.Put(ctx, prefix+"/ok", strings.NewReader("x"), 1)
	inner := srv.Open(t, prefix)
	var names []string
	inner.List(ctx, "", func(oi bucket.ObjectInfo) error { names = append(names, oi.Name); return nil })
	if strings.Join(names, ",") != "ok" {
		t.Fatalf("List = %v, want [ok]", names)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for url, cfg := range map[string]bucket.Config{
		"s3://Bad_Bucket/p":  {},
		"s3://ab/p":          {},
		"s3://a..b/p":        {},
		"s3://-ab/p":         {},
		"s3://good-bucket/p": {Endpoint: "ftp://host"},
		"s3://good-bucket":   {Endpoint: "http://host/path"},
		"s3://good-bucket/x": {Endpoint: "http://user:pw@host"},
	} {
		_, err := bucket.Open(ctx, url, cfg)
		if !errors.Is(err, dotmesh.ErrInvalidName) && !errors.Is(err, dotmesh.ErrInvalidArgument) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%q, endpoint %q): %v, want a one-line invalid name or argument", url, cfg.Endpoint, err)
		}
	}
	st, err := bucket.Open(ctx, "s3://good-bucket/p", bucket.Config{})
	if err != nil || st.Location() != "s3://good-bucket/p" {
		t.Fatalf("Open for AWS: %v, %v", st, err)
	}
}

// Nothing listens: the store is unavailable, which a retry may cure.
func TestUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	st, err := s3.Open(context.Background(), "bkt", "", bucket.Config{Endpoint: "http://" + addr, AccessKey: "a", SecretKey: "b"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Stat(context.Background(), "o")
	if !errors.Is(err, dotmesh.ErrUnavailable) || !strings.Contains(err.Error(), "cannot reach the S3 server") {
		t.Fatalf("Stat with no server: %v, want ErrUnavailable", err)
	}
}

// killingReader kills the server once half its data is read.
type killingReader struct {
	r      io.Reader
	n, at  int64
	killed chan struct{}
	kill   func()
	once   sync.Once
}

func (k *killingReader) Read(p []byte) (int, error) {
	if k.n >= k.at {
		k.once.Do(func() { k.kill(); close(k.killed) })
	}
	n, err := k.r.Read(p)
	k.n += int64(n)
	return n, err
}

// The S3 gateway killed in the middle of an upload and started again: the
// bare Put fails with ErrUnavailable and leaves nothing visible; behind
// WithRetry the Put waits out the restart and succeeds.
func TestServerKilledMidUpload(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Shared(t)
	st := srv.Open(t, freshPrefix(t))
	const size = 40 << 20
	body := bytes.Repeat([]byte("dotmesh!"), size/8)
	if err := st.Put(ctx, "old", strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"big", "old"} {
		kr := &killingReader{r: bytes.NewReader(body), at: size / 2, killed: make(chan struct{}), kill: srv.Kill}
		err := st.Put(ctx, name, kr, size)
		if !errors.Is(err, dotmesh.ErrUnavailable) {
			t.Fatalf("Put of %s while the server is killed: %v, want ErrUnavailable", name, err)
		}
		srv.Restart(t)
	}
	if _, err := st.Stat(ctx, "big"); !errors.Is(err, dotmesh.ErrNotFound) {
		t.Fatalf("after the killed upload: Stat big = %v, want ErrNotFound (no partial object)", err)
	}
	rc, err := st.Get(ctx, "old", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "old" {
		t.Fatalf("a killed overwrite left %d bytes in place of the old object", len(b))
	}

	// With retries: the reader is seekable, so it is put again whole.
	rs := bucket.WithRetry(st, bucket.RetryOptions{Attempts: 40, Base: 200 * time.Millisecond, Max: 2 * time.Second})
	killed := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		kr := &killingReader{r: bytes.NewReader(body), at: size / 2, killed: killed, kill: srv.Kill}
		done <- rs.Put(ctx, "big", struct {
			io.Reader
			io.Seeker
		}{kr, kr.r.(io.Seeker)}, size)
	}()
	<-killed
	time.Sleep(time.Second)
	srv.Restart(t)
	if err := <-done; err != nil {
		t.Fatalf("Put behind WithRetry across a restart: %v", err)
	}
	rc, err = st.Get(ctx, "big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("after the retried Put: %d bytes, %v; want the %d put", len(got), err, size)
	}
	var names []string
	st.List(ctx, "", func(oi bucket.ObjectInfo) error { names = append(names, oi.Name); return nil })
	if strings.Join(names, ",") != "big,old" {
		t.Fatalf("List = %v, want [big old]", names)
	}
}

// Uploads carry no SHA-256 of their body (UNSIGNED-PAYLOAD, not a
// streaming signature of every 64 KiB over plain HTTP): the objects are
// sealed or checksummed on their own, and hashing them cost the client
// and the server CPU. SeaweedFS takes them, and they read back whole.
func testUnsignedPayload(t *testing.T) {
	ctx := context.Background()
	srv := server(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			mu.Lock()
			seen = append(seen, r.Header.Get("X-Amz-Content-Sha256"))
			mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	cfg := srv.Config()
	cfg.Endpoint = proxy.URL
	st, err := s3.Open(ctx, s3test.BucketName, freshPrefix(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16)
	if err := st.Put(ctx, "put", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, "create", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"put", "create"} {
		rc, err := st.Get(ctx, name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%s read back: %d bytes, %v", name, len(got), err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 { // and Open's probe
		t.Fatalf("%d PUT requests; want the put's and the create's at least", len(seen))
	}
	for _, h := range seen {
		if h != "UNSIGNED-PAYLOAD" {
			t.Fatalf("a PUT with X-Amz-Content-Sha256 %q; want UNSIGNED-PAYLOAD", h)
		}
	}
}
