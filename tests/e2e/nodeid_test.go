package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
)

// TestNodeIDHeldByLiveNode: a second node on the machine under the id of
// a live node (`dm cluster join` without --node-id: the host name; or
// `dm serve --node-id` of the same id) is refused, naming the live node's
// address, and the live node keeps its registration. A node killed with
// -9 starts again at once under its id: nothing answers at its address,
// so its registration is taken over without waiting for its lease.
func TestNodeIDHeldByLiveNode(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	eps := strings.Join(etcd.Endpoints(), ",")
	n1 := startServe(t, "n1", "127.0.0.1", "--store", "etcd", "--etcd-endpoints", eps) // id: the host name
	keyFile := filepath.Join(n1.data, "admin-api-key")
	want := "is held by a live node at http://" + n1.addr

	e := newEnv(t)
	r := e.fails(want, "cluster", "join", "--etcd-endpoints", eps, "--cluster-key-file", keyFile,
		"--data-dir", e.data, "--port", strconv.Itoa(freePort(t)), "--docker-socket", "")
	if !strings.Contains(r.err, "--node-id") {
		t.Errorf("the refusal does not say how to choose another id: %q", r.err)
	}

	host, _ := os.Hostname()
	id, _, _ := strings.Cut(host, ".")
	cmd := exec.Command(dmBin, "serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.2:"+strconv.Itoa(freePort(t)),
		"--docker-socket", "", "--store", "etcd", "--etcd-endpoints", eps, "--node-id", id, "--cluster-key-file", keyFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(stderr.String(), want) {
			t.Fatalf("dm serve under a live node's id: %v, stderr %q", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("dm serve under a live node's id is still running: stderr %q", stderr.String())
	}

	e.addRemote(n1)
	if out := e.on(n1, "cluster", "nodes"); !strings.Contains(out, n1.addr) || strings.Count(out, "http://") != 1 {
		t.Fatalf("dm cluster nodes after the refusals:\n%s", out)
	}

	n1.kill()
	start := time.Now()
	n1.start()
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("restart after kill -9 took %s: the dead node's registration was waited out", d)
	}
	if out := e.on(n1, "cluster", "nodes"); !strings.Contains(out, n1.addr) {
		t.Fatalf("dm cluster nodes after the restart:\n%s", out)
	}
}
