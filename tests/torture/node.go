package torture

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// node is one `dm serve` child process on 127.0.0.x with its own data
// directory. It is only ever signalled by the PID this package started.
type node struct {
	name, addr, data, logPath string
	args                      []string
	key                       string
	cmd                       *exec.Cmd
	exited                    chan struct{}
	// undo removes what the backend made outside the data directory (a
	// zfs pool, a loop mount); run after the node has stopped.
	undo func()
}

// backendFlags returns the `dm serve` flags that put node i's new dots on
// backend, and what to undo once the node has stopped.
func backendFlags(backend, data string) ([]string, func(), error) {
	switch backend {
	case "files":
		return nil, func() {}, nil
	case "zfs":
		if os.Geteuid() != 0 {
			return nil, nil, errors.New("the zfs backend needs root")
		}
		if err := zfstest.Ensure(); err != nil {
			return nil, nil, fmt.Errorf("zfs backend: %w", err)
		}
		pool := zfstest.NewPoolName()
		undo := func() {
			if err := zfstest.DestroyPool(pool); err != nil {
				fmt.Fprintf(os.Stderr, "torture: destroying pool %s: %v\n", pool, err)
				return
			}
			// The pool's file goes too, also when the rest of a failed
			// run's work dir stays for its logs.
			os.RemoveAll(filepath.Join(data, "zfs"))
		}
		return []string{"--backend", "zfs", "--zfs-pool", pool, "--pool-size", "2G"}, undo, nil
	case "btrfs":
		if os.Geteuid() != 0 {
			return nil, nil, errors.New("the btrfs backend loop-mounts an image and needs root")
		}
		for _, tool := range []string{"btrfs", "mkfs.btrfs", "losetup"} {
			if _, err := exec.LookPath(tool); err != nil {
				return nil, nil, fmt.Errorf("btrfs backend: %s not found (apt-get install btrfs-progs mount)", tool)
			}
		}
		// The node unmounts its image on a clean stop; after a failed
		// stop unmount and detach it here, before the work dir goes.
		undo := func() {
			mnt, img := filepath.Join(data, "btrfs", "btrfs"), filepath.Join(data, "btrfs", "btrfs.img")
			if exec.Command("mountpoint", "-q", mnt).Run() == nil {
				if exec.Command("umount", mnt).Run() != nil {
					exec.Command("umount", "-l", mnt).Run()
				}
			}
			out, _ := exec.Command("losetup", "-j", img).Output()
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if dev, _, ok := strings.Cut(l, ":"); ok && strings.HasPrefix(dev, "/dev/") {
					exec.Command("losetup", "-d", dev).Run()
				}
			}
			if exec.Command("mountpoint", "-q", mnt).Run() != nil {
				os.Remove(img)
			}
		}
		return []string{"--backend", "btrfs", "--pool-size", "2G"}, undo, nil
	}
	return nil, nil, fmt.Errorf("unknown backend %q: use files, zfs or btrfs", backend)
}

// newNode reserves a port on ip and prepares node name in work.
func newNode(dm, work, name, ip, backend string) (*node, error) {
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return nil, fmt.Errorf("listening on %s (loopback aliases 127.0.0.x are needed): %w", ip, err)
	}
	addr := l.Addr().String()
	l.Close()
	n := &node{name: name, addr: addr, data: filepath.Join(work, name), logPath: filepath.Join(work, name+".log")}
	flags, undo, err := backendFlags(backend, n.data)
	if err != nil {
		return nil, err
	}
	n.undo = undo
	n.args = append([]string{dm, "serve", "--data-dir", n.data, "--listen", addr, "--docker-socket", ""}, flags...)
	return n, nil
}

// start runs the node and waits until it answers /healthz.
func (n *node) start(env []string) error {
	logf, err := os.OpenFile(n.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- torture: starting %s at %s\n", n.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.args[0], n.args[1:]...)
	cmd.Stdout, cmd.Stderr, cmd.Env = logf, logf, env
	if err := cmd.Start(); err != nil {
		return err
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { c.Wait(); close(ch) }(cmd, n.exited)
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return fmt.Errorf("dm serve %s exited at start: %s", n.name, n.logTail(3))
		default:
		}
		if n.key == "" {
			if k, err := os.ReadFile(filepath.Join(n.data, "admin-api-key")); err == nil {
				n.key = strings.TrimSpace(string(k))
			}
		}
		if n.key != "" {
			if resp, err := hc.Get("http://" + n.addr + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.kill()
	return fmt.Errorf("dm serve %s on %s did not answer /healthz in 90s: %s", n.name, n.addr, n.logTail(3))
}

func (n *node) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill SIGKILLs the node (by the PID started here) and waits for it.
func (n *node) kill() {
	if n.running() {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
}

// stop asks the node to shut down cleanly (SIGTERM), killing it after 30s.
func (n *node) stop() {
	if !n.running() {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.kill()
	}
}

// logTail returns the node's last log lines joined by " | ".
func (n *node) logTail(lines int) string {
	b, _ := os.ReadFile(n.logPath)
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, " | ")
}

// pid is the node's process id, for reports.
func (n *node) pid() string {
	if n.cmd == nil || n.cmd.Process == nil {
		return "-"
	}
	return strconv.Itoa(n.cmd.Process.Pid)
}
