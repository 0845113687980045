package sourcetest

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Redis is a private redis-server on a free loopback port, without
// persistence.
type Redis struct {
	*server
	Port int
	cli  string
}

// StartRedis starts a server in a temp dir.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := find(t, "redis-server", "redis-server")
	cli := find(t, "redis-tools", "redis-cli")
	dir := tempDir(t, "dm-redis-", nil)
	r := &Redis{Port: FreePort(t), cli: cli}
	r.server = start(t, "redis-server", nil, dir, bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no",
		"--repl-diskless-sync-delay", "0") // else every --rdb waits 5s
	r.waitFor(func() error {
		out, err := exec.Command(cli, "-p", strconv.Itoa(r.Port), "PING").Output()
		if err != nil || strings.TrimSpace(string(out)) != "PONG" {
			return fmt.Errorf("PING: %q %v", out, err)
		}
		return nil
	})
	return r
}

// URL returns the source URL of the instance.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Cmd runs redis-cli with commands on stdin (one per line) and returns
// the output.
func (r *Redis) Cmd(t testing.TB, script string) string {
	t.Helper()
	return strings.TrimSpace(command(t, script, r.cli, "-p", strconv.Itoa(r.Port)))
}
