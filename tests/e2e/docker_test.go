package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The Docker volume plugin through the real docker CLI, a real engine and
// the real dm: containers write and read subdots while dm commits, resets
// and checks out under them.

func TestDockerFiles(t *testing.T) {
	requireDocker(t)
	image := busyboxImage(t)
	sock := dockerPluginSocket(t) // checked after the node stopped
	e := newEnv(t)
	t.Cleanup(e.stopNode)
	e.clusterInitArgs("--docker-socket", sock)
	dockerWorkflow(t, e, image, sock)
}

func TestDockerZFS(t *testing.T) {
	requireDocker(t)
	image := busyboxImage(t)
	sock := dockerPluginSocket(t)
	e := zfsEnv(t, "--docker-socket", sock)
	dockerWorkflow(t, e, image, sock)
}

// dockerPluginSocket is a plugin socket of a unique name, so the test
// collides neither with a real installation (dm.sock) nor with itself.
func dockerPluginSocket(t *testing.T) string {
	sock := filepath.Join("/run/docker/plugins", randName("dm-test-")+".sock")
	t.Cleanup(func() {
		if _, err := os.Lstat(sock); err == nil {
			t.Errorf("the plugin socket %s is still there after the node stopped", sock)
			os.Remove(sock)
		}
	})
	return sock
}

func dockerWorkflow(t *testing.T, e *env, image, sock string) {
	driver := strings.TrimSuffix(filepath.Base(sock), ".sock")
	if fi, err := os.Stat(sock); err != nil {
		t.Fatalf("dm serve made no plugin socket: %v", err)
	} else if fi.Mode().Perm()&0o007 != 0 {
		t.Fatalf("plugin socket mode %v is open to others", fi.Mode().Perm())
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(e.data, "dm.log"))
			t.Logf("node log (last lines):\n%s", lastLines(string(b), 40))
		}
	})
	dot := randName("app")
	web := dot + ".web"
	var containers []string
	volumes := map[string]bool{}
	// Docker cleans up while the node still serves the plugin: without it,
	// Docker retries the missing plugin for a long while.
	var cleaned bool
	cleanup := func() {
		if cleaned {
			return
		}
		cleaned = true
		for _, c := range containers {
			docker(t, "rm", "-f", c)
		}
		for v := range volumes {
			docker(t, "volume", "rm", "-f", v)
		}
	}
	t.Cleanup(cleanup)
	run := func(volume string, args ...string) string {
		t.Helper()
		volumes[volume] = true
		return dockerOK(t, append([]string{"run", "--rm", "--network", "none", "--volume-driver", driver, "-v", volume + ":/data", image}, args...)...)
	}
	read := func(volume string) string {
		t.Helper()
		return strings.TrimSpace(run(volume, "cat", "/data/f"))
	}

	start := time.Now()
	run(web, "sh", "-c", "echo v1 > /data/f")
	if st := e.item(dot); st.Dot.Backend == "" || len(st.Mounts) != 0 {
		t.Fatalf("after the container exited: %+v", st)
	}
	e.ok("commit", "--dot", dot, "-m", "v1")
	run(web, "sh", "-c", "echo v2 > /data/f")
	e.ok("commit", "--dot", dot, "-m", "v2")
	run(web, "sh", "-c", "echo uncommitted > /data/f")
	e.ok("reset", "--dot", dot, "--hard", "HEAD^")
	if got := read(web); got != "v1" {
		t.Fatalf("after dm reset --hard HEAD^ a new container reads %q, want v1", got)
	}
	t.Logf("write, commit, reset, read through containers: %s", time.Since(start).Round(time.Millisecond))

	// A new branch: unpinned names follow the checkout, pinned ones stay.
	e.ok("checkout", "--dot", dot, "-b", "feature")
	run(web, "sh", "-c", "echo feature > /data/f")
	if got := read(web); got != "feature" {
		t.Fatalf("on branch feature a container reads %q", got)
	}
	if got := read(dot + "@master.web"); got != "v1" {
		t.Fatalf("pinned @master a container reads %q, want v1", got)
	}
	e.ok("commit", "--dot", dot, "-m", "feature")

	// docker volume ls / inspect show the dots and their current branch.
	// Filtered by driver: Docker then asks only this plugin, not every
	// socket in /run/docker/plugins (other nodes may be slow to answer).
	ls := dockerOK(t, "volume", "ls", "--filter", "driver="+driver, "--format", "{{.Driver}} {{.Name}}")
	for _, want := range []string{driver + " " + dot + "\n", driver + " " + web + "\n"} {
		if !strings.Contains(ls, want) {
			t.Fatalf("docker volume ls lacks %q:\n%s", want, ls)
		}
	}
	var vols []struct {
		Name, Driver, Mountpoint string
		Status                   map[string]any
	}
	if err := json.Unmarshal([]byte(dockerOK(t, "volume", "inspect", web)), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("docker volume inspect %s: %v %+v", web, err, vols)
	}
	if v := vols[0]; v.Driver != driver || v.Status["branch"] != "feature" || v.Status["subdot"] != "web" || !filepath.IsAbs(v.Mountpoint) {
		t.Fatalf("docker volume inspect %s: %+v", web, v)
	}

	// Bad names are refused by docker run with our message.
	for name, want := range map[string]string{
		dot + ".__secret": "reserved",
		dot + "@nope.web": "has no branch nope",
		"bad name!":       "dot name",
	} {
		_, errs, code := docker(t, "run", "--rm", "--network", "none", "--volume-driver", driver, "-v", name+":/data", image, "true")
		if code == 0 || !strings.Contains(errs, want) {
			t.Fatalf("docker run -v %q: exit %d, stderr %q; want an error with %q", name, code, errs, want)
		}
	}

	// A running container blocks reset and checkout, by name; --restart
	// stops it, switches and starts it again on the new state.
	sleeper := randName("dm-sleeper-")
	containers = append(containers, sleeper)
	volumes[web] = true
	dockerOK(t, "run", "-d", "--name", sleeper, "--network", "none", "--stop-timeout", "1",
		"--volume-driver", driver, "-v", web+":/data", image, "sleep", "100000")
	item := e.item(dot)
	if len(item.Mounts) != 1 || item.Mounts[0].Name != sleeper || item.Mounts[0].Consumer != "docker" {
		t.Fatalf("dm list --json mounts: %+v; want the container %s", item.Mounts, sleeper)
	}
	if out := e.ok("list"); !strings.Contains(out, "USED BY") || !strings.Contains(out, sleeper) {
		t.Fatalf("dm list does not show who uses %s:\n%s", dot, out)
	}
	for _, op := range [][]string{{"reset", "--dot", dot, "--hard", "HEAD^"}, {"checkout", "--dot", dot, "master"}} {
		if r := e.fails(sleeper, op...); !strings.HasSuffix(r.err, "; stop them first, or pass --restart to stop and start them around the "+op[0]+"\n") {
			t.Fatalf("dm %s under a running container printed %q; want the --restart advice", op[0], r.err)
		}
	}
	_, before := running(t, sleeper)

	start = time.Now()
	e.ok("reset", "--dot", dot, "--hard", "--restart", "HEAD^")
	t.Logf("dm reset --restart around one container: %s", time.Since(start).Round(time.Millisecond))
	up, after := running(t, sleeper)
	if !up || after == before {
		t.Fatalf("after dm reset --restart the container runs: %v (started %s, before %s)", up, after, before)
	}
	if got := strings.TrimSpace(dockerOK(t, "exec", sleeper, "cat", "/data/f")); got != "v1" {
		t.Fatalf("after dm reset --restart the running container reads %q, want v1 (feature's parent)", got)
	}
	e.ok("checkout", "--dot", dot, "--restart", "master")
	if got := strings.TrimSpace(dockerOK(t, "exec", sleeper, "cat", "/data/f")); got != "v1" {
		t.Fatalf("after dm checkout --restart master the container reads %q", got)
	}
	if item := e.item(dot); item.Branch.Name != "master" || len(item.Mounts) != 1 || item.Mounts[0].Branch != "master" {
		t.Fatalf("after checkout --restart: branch %s, mounts %+v", item.Branch.Name, item.Mounts)
	}

	// Once the container is gone nothing holds the dot; removing the
	// Docker volume keeps the dot and its commits.
	dockerOK(t, "rm", "-f", sleeper)
	waitMounts(t, e, dot, 0)
	dockerOK(t, "volume", "rm", web)
	if n := len(e.log(dot)); n != 1 {
		t.Fatalf("after docker volume rm, dot %s has %d commits on master, want 1 (v1)", dot, n)
	}
	cleanup()
	e.stopNode() // a clean shutdown removes the plugin socket (checked in cleanup)
}

// waitMounts waits until the dot has n mounts: Docker unmounts a removed
// container's volumes asynchronously to `docker rm -f` returning.
func waitMounts(t *testing.T, e *env, dot string, n int) {
	t.Helper()
	var ms []dotmesh.Mount
	for i := 0; i < 100; i++ {
		if ms = e.item(dot).Mounts; len(ms) == n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("dot %s has mounts %+v, want %d", dot, ms, n)
}
