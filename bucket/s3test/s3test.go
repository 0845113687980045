// Package s3test runs a real S3 server for tests: SeaweedFS's `weed
// server -s3` on 127.0.0.1, with free ports, data in a temporary
// directory, two identities (one that may write, one read-only) and a
// bucket. Tests that use it need the weed binary: `make test` builds it
// with scripts/ensure-seaweedfs.sh (once; it is cached) and passes its
// path in DOTMESH_WEED; without that variable the script's cache path is
// tried. A missing binary fails the test, naming the script.
package s3test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/s3"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Version is the SeaweedFS module version scripts/ensure-seaweedfs.sh
// builds; keep the two equal.
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// EnvWeed names the environment variable holding the weed binary's path.
const EnvWeed = "DOTMESH_WEED"

// BucketName is the bucket Start creates.
const BucketName = "dotmesh-test"

// Credentials of the two identities.
const (
	AccessKey         = "dotmeshtestwriter"
	SecretKey         = "dotmesh-test-writer-secret-key-0123456789"
	ReadOnlyAccessKey = "dotmeshtestreader"
	ReadOnlySecretKey = "dotmesh-test-reader-secret-key-0123456789"
)

// Server is a running (or killed) SeaweedFS with an S3 gateway.
type Server struct {
	// Endpoint is the S3 gateway's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// Dir holds the server's data and its log (weed.log).
	Dir string

	weed string
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// WeedPath finds the weed binary: $DOTMESH_WEED, or the cache
// scripts/ensure-seaweedfs.sh builds into.
func WeedPath() (string, error) {
	p := os.Getenv(EnvWeed)
	if p == "" {
		cache := os.Getenv("DOTMESH_CACHE")
		if cache == "" {
			base := os.Getenv("XDG_CACHE_HOME")
			if base == "" {
				home, _ := os.UserHomeDir()
				base = filepath.Join(home, ".cache")
			}
			cache = filepath.Join(base, "dotmesh")
		}
		p = filepath.Join(cache, "weed-"+Version, "weed")
	}
	waitForBuild(p)
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("the real S3 server for these tests, SeaweedFS (weed), is not at %s: run scripts/ensure-seaweedfs.sh (it builds weed %s once, a few minutes; a background build by make test logs to %s) and set %s to the path it prints; `make test` does both", p, Version, filepath.Join(filepath.Dir(p), "build.log"), EnvWeed)
	}
	return p, nil
}

// waitForBuild waits while a build of weed holds the lock beside it
// (`make test` starts one in the background: see the script).
func waitForBuild(weed string) {
	f, err := os.Open(filepath.Join(filepath.Dir(weed), ".lock"))
	if err != nil {
		return
	}
	defer f.Close()
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
}

// Start runs a SeaweedFS S3 server for the test and creates BucketName;
// it is killed and its directory removed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("SeaweedFS log (%s), last lines:\n%s", filepath.Join(s.Dir, "weed.log"), s.logTail(30))
		}
		s.Close()
	})
	return s
}

// shared is the server Shared hands out: one per test binary.
var shared struct {
	sync.Mutex
	srv *Server
}

// Shared is Start for the tests of one package that take turns on one
// server, each in a prefix of its own: a SeaweedFS start costs ~10 s
// (its master holds volume allocation for a pulse). It is launched on
// first use, started again if a test left it killed, and stopped by
// CloseShared, which the package's TestMain calls after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv == nil {
		s, err := Launch("")
		if err != nil {
			t.Fatal(err)
		}
		shared.srv = s
	} else if shared.srv.cmd == nil {
		shared.srv.Restart(t)
	}
	s := shared.srv
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("SeaweedFS log (%s), last lines:\n%s", filepath.Join(s.Dir, "weed.log"), s.logTail(30))
		}
	})
	return s
}

// CloseShared kills the server Shared started, if any, and removes its
// directory.
func CloseShared() {
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		shared.srv.Close()
		shared.srv = nil
	}
}

// Launch is Start for programs that are not tests (the bench): it runs
// the server with its data in a new directory under parent (the system's
// temporary directory when empty) and creates BucketName; Close kills it
// and removes that directory. A failed Launch leaves nothing behind.
func Launch(parent string) (*Server, error) {
	weed, err := WeedPath()
	if err != nil {
		return nil, err
	}
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp(parent, "dm-weed-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, weed: weed}
	if err := s.launch(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) launch() error {
	if err := s.writeConfig(); err != nil {
		return err
	}
	ports, err := freePorts(8)
	if err != nil {
		return err
	}
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	dir := s.Dir
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	s.args = []string{"server",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-dir=" + filepath.Join(dir, "data"),
		"-master.port=" + p(0), "-master.port.grpc=" + p(1),
		"-volume.port=" + p(2), "-volume.port.grpc=" + p(3),
		"-filer.port=" + p(4), "-filer.port.grpc=" + p(5),
		"-s3", "-s3.port=" + p(6), "-s3.port.grpc=" + p(7),
		"-s3.config=" + filepath.Join(dir, "s3.json"),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.autoCreateBucket=false",
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
		"-master.telemetry=false",
		// A restarted master that resumes its raft state takes twice as
		// long to elect itself; the volumes tell it the topology anyway.
		"-master.resumeState=false",
		"-master.volumeSizeLimitMB=256", "-volume.max=100",
	}
	s.Endpoint = "http://127.0.0.1:" + p(6)
	return s.restart()
}

// Close kills the server and removes its directory.
func (s *Server) Close() {
	s.Kill()
	os.RemoveAll(s.Dir)
}

func (s *Server) writeConfig() error {
	type cred struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type identity struct {
		Name        string   `json:"name"`
		Credentials []cred   `json:"credentials"`
		Actions     []string `json:"actions"`
	}
	conf := struct {
		Identities []identity `json:"identities"`
	}{[]identity{
		{"writer", []cred{{AccessKey, SecretKey}}, []string{"Admin", "Read", "List", "Tagging", "Write"}},
		{"reader", []cred{{ReadOnlyAccessKey, ReadOnlySecretKey}}, []string{"Read", "List"}},
	}}
	b, _ := json.Marshal(conf)
	return os.WriteFile(filepath.Join(s.Dir, "s3.json"), b, 0o600)
}

// Restart starts the server again after Kill (Start calls it first), with
// the same ports and data, and waits until it stores objects.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.cmd != nil {
		t.Fatal("s3test: Restart of a running server; Kill it first")
	}
	if err := s.restart(); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) restart() error {
	log, err := os.OpenFile(filepath.Join(s.Dir, "weed.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.weed, s.args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting SeaweedFS (%s): %v", s.weed, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(s.done) }()
	if err := s.waitReady(90 * time.Second); err != nil {
		return fmt.Errorf("SeaweedFS S3 server at %s: %v\nlast lines of its log:\n%s", s.Endpoint, err, s.logTail(30))
	}
	return nil
}

// waitReady waits until the gateway answers with the bucket created and
// a volume to write into (the first put after start can find none).
func (s *Server) waitReady(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	st, err := s3.Open(ctx, BucketName, "", s.Config())
	if err != nil {
		return err
	}
	defer st.Close()
	var last error
	for {
		select {
		case <-s.done:
			return fmt.Errorf("weed exited: %v", s.cmd.ProcessState)
		default:
		}
		last = st.CreateBucket(ctx)
		if last == nil || errors.Is(last, dotmesh.ErrAlreadyExists) {
			last = st.Put(ctx, "s3test-ready", strings.NewReader("ready"), 5)
			if last == nil {
				if last = st.Delete(ctx, "s3test-ready"); last == nil {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", limit, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Kill stops the server at once (SIGKILL), as a crash would, and waits
// for it to exit. Killing a stopped server does nothing.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// PID is the running server's process id, 0 when killed.
func (s *Server) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Config has the writer's credentials for the server.
func (s *Server) Config() bucket.Config {
	return bucket.Config{Endpoint: s.Endpoint, AccessKey: AccessKey, SecretKey: SecretKey}
}

// ReadOnlyConfig has the credentials of the identity that may only read
// and list.
func (s *Server) ReadOnlyConfig() bucket.Config {
	return bucket.Config{Endpoint: s.Endpoint, AccessKey: ReadOnlyAccessKey, SecretKey: ReadOnlySecretKey}
}

// URL is the store URL of prefix in the test bucket ("s3://dotmesh-test/PREFIX").
func (s *Server) URL(prefix string) string {
	return "s3://" + BucketName + "/" + prefix
}

// Open opens prefix of the test bucket with the writer's credentials,
// closed when the test ends. Use a prefix per test (t.Name() with its
// slashes replaced does): the store starts empty.
func (s *Server) Open(t testing.TB, prefix string) *s3.Store {
	t.Helper()
	st, err := s3.Open(context.Background(), BucketName, prefix, s.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (s *Server) logTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "weed.log"))
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePorts finds n free loopback ports, held all at once so that they
// differ, then released for the server.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
