// Package sourcetest starts private database servers for tests: in temp
// dirs, on unix sockets or free loopback ports, stopped by PID when the
// test ends (also when it fails). A missing server program fails the test
// naming the Debian package to install; nothing is skipped.
package sourcetest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// server is one running database process.
type server struct {
	t    testing.TB
	name string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
	stop syscall.Signal // how to stop it quickly; SIGTERM unless set
}

// find returns the newest match of a glob or the program on PATH.
func find(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if strings.Contains(n, "*") {
			if ms, _ := filepath.Glob(n); len(ms) > 0 {
				sort.Strings(ms)
				return ms[len(ms)-1]
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed: install Debian's %s package (make test does)", names[0], pkg)
	return ""
}

// tempDir makes a temp dir owned by owner (nil: the current user), since
// servers that refuse to run as root cannot use t.TempDir's 0700 dirs.
func tempDir(t testing.TB, prefix string, owner *user.User) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func credential(u *user.User) *syscall.SysProcAttr {
	if u == nil {
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// runAs runs a setup command and fails the test with its output.
func runAs(t testing.TB, u *user.User, dir string, prog string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = credential(u)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs a server in the background and stops it (SIGTERM, then
// SIGKILL) when the test ends.
func start(t testing.TB, name string, u *user.User, dir string, prog string, args ...string) *server {
	t.Helper()
	s := &server{t: t, name: name, dir: dir, done: make(chan struct{}), log: filepath.Join(dir, name+".log")}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(prog, args...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = credential(u)
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { s.cmd.Wait(); logf.Close(); close(s.done) }()
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the server by its PID and waits for it; safe to repeat.
func (s *server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	sig := s.stop
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// waitFor polls ready until it succeeds or the server exits or 60s pass.
func (s *server) waitFor(ready func() error) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.log)
			s.t.Fatalf("%s exited while starting:\n%s", s.name, b)
		default:
		}
		if err = ready(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(s.log)
	s.t.Fatalf("%s did not get ready in 60s (%v):\n%s", s.name, err, b)
}

// FreePort returns a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func lookupUser(t testing.TB, name, pkg string) *user.User {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil // run as ourselves
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s is missing: install Debian's %s package (make test does)", name, pkg)
	}
	return u
}

// command runs a client program and returns stdout, failing on error.
func command(t testing.TB, stdin string, prog string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", prog, strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

var _ = fmt.Sprintf

// SQLite3 fails the test unless the sqlite3 shell is installed, and
// returns its path.
func SQLite3(t testing.TB) string {
	t.Helper()
	return find(t, "sqlite3", "sqlite3")
}

// SQLite runs a script against a database file and returns its output.
func SQLite(t testing.TB, db, script string) string {
	t.Helper()
	return strings.TrimSpace(command(t, script, SQLite3(t), "-bail", "-batch", db))
}
