package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestImage builds the image with `make image` (the Dockerfile FROM
// scratch, the static dm) under a unique name against the real dockerd,
// runs dm version and --help in it, then runs dm serve in a container with
// a volume and drives it with dm from the host. A second container on the
// same volume, with the image's default command, finds the dot again.
// Image, containers and volume are removed also when the test fails.
func TestImage(t *testing.T) {
	requireDocker(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make not found: apt-get install make; the image is built by `make image`")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	image := randName("dm-e2e-image-")
	t.Cleanup(func() {
		out, _, _ := docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}", image)
		if tags := strings.Fields(out); len(tags) > 0 {
			docker(t, append([]string{"rmi", "-f"}, tags...)...)
		}
	})
	makeOut := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, "make", append([]string{"-s", "-C", root}, args...)...)
		c.Env = append(os.Environ(), "DOCKER_HOST=unix://"+dockerSock)
		var out, errb bytes.Buffer
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil {
			t.Fatalf("make %s: %v: %s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String()
	}
	version := strings.TrimSpace(makeOut("version"))
	start := time.Now()
	makeOut("image", "IMAGE="+image)
	t.Logf("make image: %s", time.Since(start).Round(time.Millisecond))
	ref := image + ":latest"
	if out := dockerOK(t, "images", "-q", image+":"+version); strings.TrimSpace(out) == "" {
		t.Fatalf("make image built no %s:%s", image, version)
	}

	if out := dockerOK(t, "run", "--rm", "--network", "none", ref, "version"); out != "Client: "+version+"\n" {
		t.Errorf("docker run %s version printed %q, want the build's version %q", ref, out, version)
	}
	if out := dockerOK(t, "run", "--rm", "--network", "none", ref, "--help"); !strings.Contains(out, "Usage:") || !strings.Contains(out, "serve") {
		t.Errorf("docker run %s --help printed no usage naming serve: %q", ref, out)
	}

	var cfg struct {
		Entrypoint []string
		Cmd        []string
		Volumes    map[string]struct{}
		Labels     map[string]string
	}
	if err := json.Unmarshal([]byte(dockerOK(t, "inspect", "-f", "{{json .Config}}", ref)), &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/usr/bin/dm"}) {
		t.Errorf("entrypoint %q, want /usr/bin/dm", cfg.Entrypoint)
	}
	if len(cfg.Cmd) == 0 || cfg.Cmd[0] != "serve" || !slices.Contains(cfg.Cmd, "/var/lib/dotmesh") {
		t.Errorf("default command %q, want dm serve with its data dir /var/lib/dotmesh", cfg.Cmd)
	}
	if _, ok := cfg.Volumes["/var/lib/dotmesh"]; !ok {
		t.Errorf("volumes %v: /var/lib/dotmesh is not a volume", cfg.Volumes)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.source":   "https://github.com/dotmesh-io/dotmesh",
	} {
		if got := cfg.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	volume := randName("dm-e2e-image-data-")
	dockerOK(t, "volume", "create", volume)
	t.Cleanup(func() { docker(t, "volume", "rm", "-f", volume) })
	// dockerd may run without a bridge (requireDocker starts it so): the
	// container shares the host's network and its API listens on a free
	// loopback port.
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	run := func(args ...string) string {
		t.Helper()
		name := randName("dm-e2e-image-node-")
		t.Cleanup(func() { docker(t, "rm", "-f", name) })
		dockerOK(t, append([]string{"run", "-d", "--name", name, "--network", "host", "-v", volume + ":/var/lib/dotmesh", ref}, args...)...)
		exited := make(chan struct{})
		go func() {
			exec.Command("docker", "-H", "unix://"+dockerSock, "wait", name).Run()
			close(exited)
		}()
		waitHealthy(t, addr, exited)
		return name
	}
	stop := func(name string) {
		t.Helper()
		dockerOK(t, "stop", "-t", "30", name)
		if code := strings.TrimSpace(dockerOK(t, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
			logs, errs, _ := docker(t, "logs", name)
			t.Fatalf("dm serve exited %s on SIGTERM, want 0: %s", code, lastLines(logs+errs, 10))
		}
		dockerOK(t, "rm", name)
	}

	first := run("serve", "--data-dir", "/var/lib/dotmesh", "--docker-socket=", "--listen", addr)
	key := readContainerFile(t, first, "/var/lib/dotmesh/admin-api-key")
	e := newEnv(t)
	e.extra = []string{"DOTMESH_PASSWORD=" + strings.TrimSpace(key)}
	e.ok("remote", "add", "image", "admin@"+addr)
	e.ok("init", "app")
	e.ok("commit", "--dot", "app", "--allow-empty", "-m", "made in a container")
	if it := e.item("app"); it.Commits != 1 {
		t.Errorf("dm list: app has %d commits, want 1", it.Commits)
	}
	stop(first)

	// The default command: its data dir is the volume, and the node listens
	// where the last start did (remembered in the data dir).
	second := run()
	if cs := e.log("app"); len(cs) != 1 || cs[0].Message != "made in a container" {
		t.Errorf("after a restart on the same volume dm log app = %+v, want the commit made before", cs)
	}
	stop(second)
}

// readContainerFile reads one file out of a container (docker cp to a
// temp dir: the image has no shell to cat it with).
func readContainerFile(t *testing.T, container, path string) string {
	t.Helper()
	dir := t.TempDir()
	dockerOK(t, "cp", container+":"+path, dir)
	b, err := os.ReadFile(filepath.Join(dir, filepath.Base(path)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
