// Package etcdtest starts private etcd servers for tests: real etcd
// processes (Debian's etcd-server, /usr/bin/etcd) on free loopback ports,
// with their data in the test's temporary directory.
//
//	c := etcdtest.Start(t, 3)
//	s, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: c.Endpoints()})
//
// Every process it starts is killed, by its PID, when the test ends, also
// when it fails. A missing etcd binary fails the test with a message that
// says how to install it; it never skips.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// startDeadline bounds how long a member may take to become healthy.
const startDeadline = 30 * time.Second

// Cluster is a set of etcd members started for one test.
type Cluster struct {
	t       testing.TB
	bin     string
	token   string
	members []*member
	tls     *TLSFiles // nil: plain http
	https   *http.Client
}

type member struct {
	name      string
	dir       string // data dir is dir/data, log is dir/etcd.log
	clientURL string
	peerURL   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

// Binary returns the path of the etcd binary, or an error that says how to
// install it.
func Binary() (string, error) {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd", nil
	}
	return "", errors.New("etcd binary not found in PATH or /usr/bin/etcd: install the Debian package etcd-server (apt-get install -y etcd-server; make test installs it)")
}

// Start starts a cluster of members etcd processes (1 or 3, say) and waits
// until every member is healthy.
func Start(t testing.TB, members int) *Cluster {
	t.Helper()
	return start(t, members, false)
}

// StartTLS is Start with https client URLs and --client-cert-auth, using
// a CA and certificates made for the test; see TLS.
func StartTLS(t testing.TB, members int) *Cluster {
	t.Helper()
	return start(t, members, true)
}

// TLS returns the certificate files of a cluster started by StartTLS.
func (c *Cluster) TLS() TLSFiles {
	c.t.Helper()
	if c.tls == nil {
		c.t.Fatal("etcdtest: TLS() on a cluster not started by StartTLS")
	}
	return *c.tls
}

func start(t testing.TB, members int, withTLS bool) *Cluster {
	t.Helper()
	if members < 1 {
		t.Fatalf("etcdtest.Start: %d members; need at least one", members)
	}
	bin, err := Binary()
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	root := t.TempDir()
	c := &Cluster{t: t, bin: bin, token: fmt.Sprintf("etcdtest-%d-%d", os.Getpid(), time.Now().UnixNano())}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(c.killAll)
	scheme := "http"
	if withTLS {
		files, err := makeCerts(filepath.Join(root, "pki"))
		if err != nil {
			t.Fatalf("etcdtest: make certificates: %v", err)
		}
		c.tls = &files
		if c.https, err = files.httpClient(); err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		scheme = "https"
	}

	// Free ports are found by listening on :0 and closing, so another
	// process may take one before etcd binds it: then start over.
	const attempts = 5
	for attempt := 1; ; attempt++ {
		c.members = nil
		ports, err := freePorts(2 * members)
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		var cluster []string
		for i := range members {
			m := &member{
				name:      fmt.Sprintf("m%d", i),
				dir:       filepath.Join(root, fmt.Sprintf("try%d-m%d", attempt, i)),
				clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
				peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			}
			if err := os.MkdirAll(m.dir, 0o700); err != nil {
				t.Fatal(err)
			}
			c.members = append(c.members, m)
			cluster = append(cluster, m.name+"="+m.peerURL)
		}
		for _, m := range c.members {
			if err := c.start(m, strings.Join(cluster, ","), "new"); err != nil {
				t.Fatalf("etcdtest: %v", err)
			}
		}
		err = c.waitHealthy(c.members...)
		if err == nil {
			return c
		}
		c.killAll()
		if attempt < attempts && c.portTaken() {
			t.Logf("etcdtest: a port was taken before etcd bound it; retrying with new ports")
			continue
		}
		t.Fatalf("etcdtest: %v", err)
	}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		ls = append(ls, l) // held until all are picked, so they differ
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

func (c *Cluster) portTaken() bool {
	for _, m := range c.members {
		if strings.Contains(logTail(m, 1<<16), "address already in use") {
			return true
		}
	}
	return false
}

// start runs the member's etcd process.
func (c *Cluster) start(m *member, initialCluster, state string) error {
	log, err := os.OpenFile(filepath.Join(m.dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close() // the child has its own copy
	fmt.Fprintf(log, "==== etcdtest: starting %s (%s) at %s\n", m.name, state, time.Now().Format(time.RFC3339Nano))
	args := []string{
		"--name", m.name,
		"--data-dir", filepath.Join(m.dir, "data"),
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", initialCluster,
		"--initial-cluster-state", state,
		"--initial-cluster-token", c.token,
		// Tests write little; a small quota keeps a runaway test from
		// filling the disk.
		"--quota-backend-bytes", fmt.Sprint(512 << 20),
		"--logger", "zap",
		"--log-outputs", "stderr",
	}
	if c.tls != nil {
		// Peers stay on plain http: only the client side is under test.
		args = append(args, "--cert-file", c.tls.ServerCert, "--key-file", c.tls.ServerKey,
			"--trusted-ca-file", c.tls.CA, "--client-cert-auth")
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Pdeathsig: if the test binary itself is killed, its etcds go too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	return nil
}

// waitHealthy waits until each member answers /health with true (which
// needs a leader and a committed read).
func (c *Cluster) waitHealthy(ms ...*member) error {
	deadline := time.Now().Add(startDeadline)
	client := &http.Client{Timeout: time.Second}
	if c.https != nil {
		client = c.https
	}
	for _, m := range ms {
		for {
			m.mu.Lock()
			done := m.done
			m.mu.Unlock()
			select {
			case <-done:
				return fmt.Errorf("etcd member %s exited during start-up; its log ends:\n%s", m.name, logTail(m, 4096))
			default:
			}
			if healthy(client, m.clientURL) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("etcd member %s at %s not healthy within %v; its log ends:\n%s", m.name, m.clientURL, startDeadline, logTail(m, 4096))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func healthy(client *http.Client, url string) bool {
	resp, err := client.Get(url + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`)
}

// Endpoints returns the client URLs of all members, running or not.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.clientURL
	}
	return eps
}

// Endpoint returns the client URL of member i.
func (c *Cluster) Endpoint(i int) string { return c.members[i].clientURL }

// Kill sends SIGKILL to member i and waits for it to exit.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.signal(c.members[i], syscall.SIGKILL, 10*time.Second)
}

// Stop stops member i gracefully (SIGTERM, then SIGKILL after 10s).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	m := c.members[i]
	if !c.signal(m, syscall.SIGTERM, 10*time.Second) {
		c.t.Logf("etcdtest: member %s ignored SIGTERM for 10s; killing it", m.name)
		c.signal(m, syscall.SIGKILL, 10*time.Second)
	}
}

// signal sends sig to the member's process, if running, and reports
// whether it exited within wait.
func (c *Cluster) signal(m *member, sig syscall.Signal, wait time.Duration) bool {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	// Only ever the PID this package started.
	if err := syscall.Kill(cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		c.t.Errorf("etcdtest: signal %v to etcd %s (pid %d): %v", sig, m.name, cmd.Process.Pid, err)
	}
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// Restart starts member i again, after Kill or Stop, with its data
// directory and ports, and waits until it is healthy.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	m := c.members[i]
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	select {
	case <-done:
	default:
		c.t.Fatalf("etcdtest: Restart(%d): member %s is still running; Stop or Kill it first", i, m.name)
	}
	var cluster []string
	for _, o := range c.members {
		cluster = append(cluster, o.name+"="+o.peerURL)
	}
	if err := c.start(m, strings.Join(cluster, ","), "existing"); err != nil {
		c.t.Fatalf("etcdtest: %v", err)
	}
	if err := c.waitHealthy(m); err != nil {
		c.t.Fatalf("etcdtest: restart: %v", err)
	}
}

// Leader returns the index of the member that is the raft leader now.
func (c *Cluster) Leader() int {
	c.t.Helper()
	cfg := clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if c.https != nil {
		cfg.TLS = c.https.Transport.(*http.Transport).TLSClientConfig
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		c.t.Fatalf("etcdtest: client: %v", err)
	}
	defer cli.Close()
	deadline := time.Now().Add(startDeadline)
	for {
		for i, m := range c.members {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.clientURL)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("etcdtest: no leader within %v", startDeadline)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LogTail returns the last bytes of member i's log, for failure messages.
func (c *Cluster) LogTail(i int) string { return logTail(c.members[i], 4096) }

func logTail(m *member, n int64) string {
	f, err := os.Open(filepath.Join(m.dir, "etcd.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// killAll kills every process this cluster started (by PID) and, if the
// test failed, logs the end of each member's log.
func (c *Cluster) killAll() {
	for _, m := range c.members {
		if !c.signal(m, syscall.SIGKILL, 10*time.Second) {
			c.t.Errorf("etcdtest: etcd %s did not exit after SIGKILL", m.name)
		}
	}
	if c.t.Failed() {
		for _, m := range c.members {
			c.t.Logf("etcdtest: log of member %s (%s) ends:\n%s", m.name, m.clientURL, logTail(m, 2048))
		}
	}
}
