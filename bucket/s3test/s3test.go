// Package s3test runs a real S3 server for tests: SeaweedFS on
// 127.0.0.1, with free ports, data in a temporary directory, two
// identities (one that may write, one read-only) and a bucket. It runs as
// two processes, as a deployment would: the storage (`weed server
// -filer`: master, volume and filer) and the S3 gateway (`weed s3`) in
// front of it. Kill and Restart act on the gateway, the process a client
// talks to: a restart takes well under a second, where a whole SeaweedFS
// that restarts on its data waits ~15 s for its master. Tests that use it need the weed binary: `make test` builds it
// with scripts/ensure-seaweedfs.sh (once; it is cached) and passes its
// path in DOTMESH_WEED; without that variable the script's cache path is
// tried. A missing binary fails the test, naming the script.
package s3test

import (
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

// Server is a running SeaweedFS with an S3 gateway that may be killed.
type Server struct {
	// Endpoint is the S3 gateway's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// Dir holds the server's data and its logs (weed.log for the
	// storage, s3.log for the gateway).
	Dir string

	weed    string
	storage *proc // nil once Closed
	gateway *proc // nil while killed
	s3Args  []string
}

// proc is one weed process.
type proc struct {
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
			t.Logf("SeaweedFS logs (in %s), last lines:\n%s", s.Dir, s.logTail(30))
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
// (its master holds volume allocation for a pulse). It is
// launched on first use, its gateway started again if a test left it
// killed, and stopped by
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
	} else if shared.srv.gateway == nil {
		shared.srv.Restart(t)
	}
	s := shared.srv
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("SeaweedFS logs (in %s), last lines:\n%s", s.Dir, s.logTail(30))
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
	storage := []string{"server", "-filer",
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-dir=" + filepath.Join(dir, "data"),
		"-master.port=" + p(0), "-master.port.grpc=" + p(1),
		"-volume.port=" + p(2), "-volume.port.grpc=" + p(3),
		"-filer.port=" + p(4), "-filer.port.grpc=" + p(5),
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-master.telemetry=false",
		"-master.volumeSizeLimitMB=256", "-volume.max=100",
	}
	s.s3Args = []string{"s3",
		"-ip.bind=127.0.0.1",
		"-port=" + p(6), "-port.grpc=" + p(7),
		"-filer=127.0.0.1:" + p(4) + "." + p(5),
		"-config=" + filepath.Join(dir, "s3.json"),
		"-port.iceberg=0", "-port.lance=0",
		"-autoCreateBucket=false",
		"-localSocket=" + filepath.Join(dir, "s3.sock"),
		// As `weed server -s3` does: to the filer over its unix socket.
		"-localFilerSocket=" + filepath.Join(dir, "filer.sock"),
	}
	s.Endpoint = "http://127.0.0.1:" + p(6)
	if s.storage, err = s.start("weed.log", storage); err != nil {
		return err
	}
	return s.restart()
}

// start runs weed with args, its output appended to the log file named.
func (s *Server) start(logName string, args []string) (*proc, error) {
	log, err := os.OpenFile(filepath.Join(s.Dir, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.weed, args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting SeaweedFS (%s %s): %v", s.weed, args[0], err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(p.done) }()
	return p, nil
}

// kill stops p at once (SIGKILL) and waits for it to exit.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Close kills the gateway and the storage and removes the directory.
func (s *Server) Close() {
	s.Kill()
	if s.storage != nil {
		s.storage.kill()
		s.storage = nil
	}
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

// Restart starts the S3 gateway again after Kill, on the same port and
// storage, and waits until it stores objects.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.gateway != nil {
		t.Fatal("s3test: Restart of a running server; Kill it first")
	}
	if err := s.restart(); err != nil {
		t.Fatal(err)
	}
}

// restart starts the gateway and waits until it is ready.
func (s *Server) restart() error {
	if s.storage == nil {
		return errors.New("s3test: the server is closed")
	}
	g, err := s.start("s3.log", s.s3Args)
	if err != nil {
		return err
	}
	s.gateway = g
	if err := s.waitReady(90 * time.Second); err != nil {
		return fmt.Errorf("SeaweedFS S3 server at %s: %v\nlast lines of its logs:\n%s", s.Endpoint, err, s.logTail(30))
	}
	return nil
}

// waitReady waits until the gateway answers signed requests with the
// bucket created and a volume to write into (the first put after the
// storage starts can find none).
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
		case <-s.gateway.done:
			return fmt.Errorf("weed s3 exited: %v", s.gateway.cmd.ProcessState)
		case <-s.storage.done:
			return fmt.Errorf("weed server exited: %v", s.storage.cmd.ProcessState)
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
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill stops the S3 gateway at once (SIGKILL), as a crash of the
// endpoint would, and waits for it to exit: connections to it are reset,
// then refused. The storage behind it keeps running, as a deployment's
// does while its gateway restarts. Killing a killed server does nothing.
func (s *Server) Kill() {
	if s.gateway == nil {
		return
	}
	s.gateway.kill()
	s.gateway = nil
}

// PID is the running gateway's process id (the process Kill ends), 0
// when killed.
func (s *Server) PID() int {
	if s.gateway == nil {
		return 0
	}
	return s.gateway.cmd.Process.Pid
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

// logTail has the last n lines of the gateway's log and of the
// storage's.
func (s *Server) logTail(n int) string {
	var out []string
	for _, l := range []struct{ name, file string }{{"gateway", "s3.log"}, {"storage", "weed.log"}} {
		b, _ := os.ReadFile(filepath.Join(s.Dir, l.file))
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		out = append(out, "== "+l.name+" ("+l.file+"):", strings.Join(lines, "\n"))
	}
	return strings.Join(out, "\n")
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
