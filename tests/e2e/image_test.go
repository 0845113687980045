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
	b := buildImage(t, "image", "")
	ref := b.name + ":latest"
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
		"org.opencontainers.image.version":  b.version,
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.source":   "https://github.com/dotmesh-io/dotmesh",
	} {
		if got := cfg.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	n := newImageNode(t, ref)
	first := n.run("serve", "--data-dir", "/var/lib/dotmesh", "--docker-socket=", "--listen", n.addr)
	e := n.connect(first)
	e.ok("init", "app")
	e.ok("commit", "--dot", "app", "--allow-empty", "-m", "made in a container")
	if it := e.item("app"); it.Commits != 1 {
		t.Errorf("dm list: app has %d commits, want 1", it.Commits)
	}
	n.stop(first)

	// The default command: its data dir is the volume, and the node listens
	// where the last start did (remembered in the data dir).
	second := n.run()
	if cs := e.log("app"); len(cs) != 1 || cs[0].Message != "made in a container" {
		t.Errorf("after a restart on the same volume dm log app = %+v, want the commit made before", cs)
	}
	n.stop(second)
}

// builtImage is an image `make TARGET IMAGE=...` built under a unique
// name; every tag of that name and of NAME-base is removed when the test
// ends.
type builtImage struct{ name, version string }

func buildImage(t *testing.T, target, tagSuffix string) builtImage {
	t.Helper()
	requireDocker(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make not found: apt-get install make; the image is built by `make %s`", target)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b := builtImage{name: randName("dm-e2e-image-")}
	t.Cleanup(func() {
		for _, name := range []string{b.name, b.name + "-base"} {
			out, _, _ := docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}", name)
			if tags := strings.Fields(out); len(tags) > 0 {
				docker(t, append([]string{"rmi", "-f"}, tags...)...)
			}
		}
	})
	makeOut := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
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
	b.version = strings.TrimSpace(makeOut("version"))
	start := time.Now()
	makeOut(target, "IMAGE="+b.name)
	t.Logf("make %s: %s", target, time.Since(start).Round(time.Millisecond))
	if out := dockerOK(t, "images", "-q", b.name+":"+b.version+tagSuffix); strings.TrimSpace(out) == "" {
		t.Fatalf("make %s built no %s:%s%s", target, b.name, b.version, tagSuffix)
	}
	ref := b.name + ":" + b.version + tagSuffix
	if out := dockerOK(t, "run", "--rm", "--network", "none", ref, "version"); out != "Client: "+b.version+"\n" {
		t.Errorf("docker run %s version printed %q, want the build's version %q", ref, out, b.version)
	}
	return b
}

// imageNode runs dm serve from an image in containers sharing one volume,
// on the host's network: dockerd may run without a bridge (requireDocker
// starts it so), and the API listens on a free loopback port.
type imageNode struct {
	t           *testing.T
	ref, volume string
	addr        string
}

func newImageNode(t *testing.T, ref string) *imageNode {
	n := &imageNode{t: t, ref: ref, volume: randName("dm-e2e-image-data-"), addr: "127.0.0.1:" + strconv.Itoa(freePort(t))}
	dockerOK(t, "volume", "create", n.volume)
	t.Cleanup(func() { docker(t, "volume", "rm", "-f", n.volume) })
	return n
}

// run starts a container (docker run options, then "--" and dm's
// arguments; none: the image's default command) and waits for its API.
func (n *imageNode) run(args ...string) string {
	t := n.t
	t.Helper()
	opts, cmd := []string(nil), args
	if i := slices.Index(args, "--"); i >= 0 {
		opts, cmd = args[:i], args[i+1:]
	}
	name := randName("dm-e2e-image-node-")
	t.Cleanup(func() { docker(t, "rm", "-f", name) })
	run := append([]string{"run", "-d", "--name", name, "--network", "host", "-v", n.volume + ":/var/lib/dotmesh"}, opts...)
	dockerOK(t, append(append(run, n.ref), cmd...)...)
	exited := make(chan struct{})
	go func() {
		exec.Command("docker", "-H", "unix://"+dockerSock, "wait", name).Run()
		close(exited)
	}()
	waitHealthy(t, n.addr, exited)
	return name
}

// connect makes a client env whose remote is the node in container c.
func (n *imageNode) connect(c string) *env {
	n.t.Helper()
	key := readContainerFile(n.t, c, "/var/lib/dotmesh/admin-api-key")
	e := newEnv(n.t)
	e.extra = []string{"DOTMESH_PASSWORD=" + strings.TrimSpace(key)}
	e.ok("remote", "add", "image", "admin@"+n.addr)
	return e
}

// stop stops a container with SIGTERM: dm serve must exit 0.
func (n *imageNode) stop(name string) {
	t := n.t
	t.Helper()
	dockerOK(t, "stop", "-t", "30", name)
	if code := strings.TrimSpace(dockerOK(t, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
		logs, errs, _ := docker(t, "logs", name)
		t.Fatalf("dm serve exited %s on SIGTERM, want 0: %s", code, lastLines(logs+errs, 10))
	}
	dockerOK(t, "rm", name)
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
