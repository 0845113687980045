package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Docker tests use the real engine: the one answering on
// /var/run/docker.sock, or a dockerd they start there (with its data and
// exec roots in a temp dir) and stop again by its PID.
const dockerSock = "/var/run/docker.sock"

func randName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// docker runs the docker CLI; it returns stdout, stderr and the exit code.
func docker(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "docker", args...)
	c.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dockerSock)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), 0
}

// dockerOK runs docker and fails the test unless it succeeds.
func dockerOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := docker(t, args...)
	if code != 0 {
		t.Fatalf("docker %s: exit %d: %s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func dockerAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "docker", "info")
	c.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dockerSock)
	return c.Run() == nil
}

// requireDocker makes sure an engine answers, starting dockerd when none
// does; a dockerd it started is stopped when the test ends.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("docker not found: install Debian's docker.io (make test does); the Docker plugin tests need a real engine")
	}
	// Test processes running at once share an engine: checking for it and
	// starting it happen under an exclusive lock, using it under a shared
	// one, and the process that started dockerd takes the lock
	// exclusively again before stopping it.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "dm-e2e-docker.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	shared := func() {
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_SH); err != nil {
			t.Fatal(err)
		}
	}
	if dockerAnswers() {
		shared()
		return
	}
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Fatal("no Docker engine answers on " + dockerSock + " and dockerd is not installed: apt-get install docker.io")
	}
	// Not t.TempDir: its path is long, and containerd's socket under the
	// exec root must fit in a unix socket address.
	dir, err := os.MkdirTemp("", "dm-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(dockerd,
		"-H", "unix://"+dockerSock,
		"--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		// No networking is needed (containers run with --network none),
		// and this machine may have no iptables.
		"--iptables=false", "--ip-masq=false", "--bridge=none")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dockerd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Wait until no other test process uses the engine (at most ten
		// minutes), then stop only the dockerd this test started, by PID.
		for i := 0; i < 6000 && syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		// dockerd leaves its default network namespace mounted in the
		// exec root; the directory cannot go while it is.
		syscall.Unmount(filepath.Join(dir, "exec", "netns", "default"), syscall.MNT_DETACH)
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(60 * time.Second)
	for !dockerAnswers() {
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("dockerd exited before answering: %s", lastLines(string(b), 10))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("dockerd did not answer within 60s: %s", lastLines(string(b), 10))
		}
		time.Sleep(200 * time.Millisecond)
	}
	shared()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// busyboxImage imports a tiny image from Debian's busybox-static (there is
// no registry here) under a unique tag, removed when the test ends.
func busyboxImage(t *testing.T) string {
	t.Helper()
	bb := "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		t.Fatal("/bin/busybox not found: install Debian's busybox-static (make test does); it makes the test image")
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"sh", "cat", "echo", "ls", "sleep", "true"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", c)); err != nil {
			t.Fatal(err)
		}
	}
	tarball := filepath.Join(filepath.Dir(root), "rootfs.tar")
	if out, err := exec.Command("tar", "-C", root, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	tag := randName("dm-e2e-busybox:")
	dockerOK(t, "import", tarball, tag)
	t.Cleanup(func() { docker(t, "rmi", "-f", tag) })
	return tag
}

// running reports whether a container runs, and since when.
func running(t *testing.T, name string) (bool, string) {
	t.Helper()
	out := strings.Fields(dockerOK(t, "inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", name))
	if len(out) != 2 {
		t.Fatalf("docker inspect %s: %q", name, out)
	}
	ok, _ := strconv.ParseBool(out[0])
	return ok, out[1]
}
