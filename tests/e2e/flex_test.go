package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// flexResult is the JSON a FlexVolume driver call prints.
type flexResult struct {
	Status       string          `json:"status"`
	Message      string          `json:"message"`
	Capabilities map[string]bool `json:"capabilities"`
}

// kubelet runs the driver as kubelet does: argv, a bare environment (no
// HOME, no dm client config), stdout and stderr combined, which must hold
// exactly one JSON object.
func kubelet(t *testing.T, driver string, env []string, args ...string) (flexResult, int) {
	t.Helper()
	c := exec.Command(driver, args...)
	c.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	out, err := c.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running the driver %v: %v", args, err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var r flexResult
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("driver %v printed %q: not one JSON object: %v", args, out, err)
	}
	if rest, _ := io.ReadAll(dec.Buffered()); len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("driver %v printed more than one JSON object: %q", args, out)
	}
	return r, code
}

func mountedAt(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			n++
		}
	}
	return n
}

func TestFlexVolume(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the FlexVolume test bind-mounts like kubelet's driver and needs root")
	}
	e := newEnv(t)
	e.clusterInitArgs("--docker-socket", "") // leave Docker's plugin socket to the Docker tests
	plugins := t.TempDir()
	if out := e.ok("flex", "install", "--dir", plugins); !strings.Contains(out, "installed") {
		t.Fatalf("dm flex install said %q", out)
	}
	driver := filepath.Join(plugins, "dotmesh.io~dm", "dm")
	if st, err := os.Stat(filepath.Join(plugins, "dotmesh.io~dm", "dm-flex.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("driver config: %v %v; want mode 0600", st, err)
	}
	pods := t.TempDir()
	dir := filepath.Join(pods, "pod-uid", "volumes", "dotmesh.io~dm", "data")
	t.Cleanup(func() { // also on failure: no mount outlives the test
		for mountedAt(t, dir) > 0 {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("cleanup unmount %s: %v", dir, err)
				return
			}
		}
	})

	r, code := kubelet(t, driver, nil, "init")
	if r.Status != "Success" || code != 0 || r.Capabilities == nil || r.Capabilities["attach"] {
		t.Fatalf("init: %+v exit %d", r, code)
	}
	if r, _ := kubelet(t, driver, nil, "attach", "{}", "node1"); r.Status != "Not supported" {
		t.Fatalf("attach: %+v", r)
	}

	opts := `{"name":"shop","subdot":"db","kubernetes.io/pod.name":"web-0","kubernetes.io/pod.namespace":"prod","kubernetes.io/fsType":"","kubernetes.io/readwrite":"rw"}`
	for i := 0; i < 2; i++ { // repeating a mount is safe
		if r, code := kubelet(t, driver, nil, "mount", dir, opts); r.Status != "Success" || code != 0 {
			t.Fatalf("mount #%d: %+v exit %d", i+1, r, code)
		}
	}
	if n := mountedAt(t, dir); n != 1 {
		t.Fatalf("%s is mounted %d times; want 1", dir, n)
	}
	if err := os.WriteFile(filepath.Join(dir, "orders"), []byte("42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := strings.TrimSpace(e.ok("path", "shop.db"))
	if b, err := os.ReadFile(filepath.Join(path, "orders")); err != nil || string(b) != "42\n" {
		t.Fatalf("the write through the bind mount is not in dm path shop.db (%s): %q %v", path, b, err)
	}
	if out := e.ok("list"); !strings.Contains(out, "web-0") {
		t.Fatalf("dm list does not show the pod using shop: %q", out)
	}
	if r := e.dm("dot", "delete", "-f", "shop"); r.code == 0 {
		t.Fatalf("deleting a dot mounted by a pod succeeded: %v", r)
	}

	for i := 0; i < 2; i++ { // repeating an unmount is safe
		if r, code := kubelet(t, driver, nil, "unmount", dir); r.Status != "Success" || code != 0 {
			t.Fatalf("unmount #%d: %+v exit %d", i+1, r, code)
		}
	}
	if n := mountedAt(t, dir); n != 0 {
		t.Fatalf("%s is still mounted after unmount", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "orders")); !os.IsNotExist(err) {
		t.Fatalf("the data still shows in %s after unmount: %v", dir, err)
	}
	e.ok("commit", "--dot", "shop", "-m", "released") // nothing uses it now
	e.ok("dot", "delete", "-f", "shop")

	// Failures: one JSON object, exit 1, a message an operator can act on.
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"mount", dir, "{bad"}, nil, "not a JSON object"},
		{[]string{"mount", dir, `{"subdot":"db"}`}, nil, `"name" is missing`},
		{[]string{"mount", dir, `{"name":"a/b"}`}, nil, "dot name"},
		{[]string{"mount", "relative", `{"name":"a"}`}, nil, "absolute"},
		{[]string{"mount", dir}, nil, "usage"},
		{[]string{"mount", dir, `{"name":"shop"}`}, []string{"DOTMESH_FLEX_CONFIG=" + unreachableConfig(t)}, "unreachable"},
	} {
		r, code := kubelet(t, driver, tc.env, tc.args...)
		if r.Status != "Failure" || code != 1 || !strings.Contains(r.Message, tc.want) {
			t.Errorf("%v: %+v exit %d; want Failure with %q", tc.args, r, code, tc.want)
		}
	}
	if n := mountedAt(t, dir); n != 0 {
		t.Fatalf("a failed mount left %s mounted", dir)
	}
}

// unreachableConfig is a driver config naming a port nothing listens on.
func unreachableConfig(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "dm-flex.json")
	cfg := `{"url":"http://127.0.0.1:` + strconv.Itoa(freePort(t)) + `","api_key":"x"}`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
