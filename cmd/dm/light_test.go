package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// heavy are import paths (prefixes) the light dm must not link: what
// only a node needs, whose package init every dm process would pay.
var heavy = []string{
	"github.com/dotmesh-io/dotmesh/daemon",
	"github.com/dotmesh-io/dotmesh/server",
	"github.com/dotmesh-io/dotmesh/cluster/",
	"github.com/dotmesh-io/dotmesh/backend/",
	"github.com/dotmesh-io/dotmesh/frontends/csi",
	"github.com/dotmesh-io/dotmesh/metrics",
	"go.etcd.io/",
	"google.golang.org/grpc",
	"google.golang.org/protobuf",
	"go.uber.org/zap",
	"github.com/container-storage-interface/",
	"github.com/prometheus/",
	// The bucket client (repositories, their sealing and compression)
	// and the chunker, which dm-node runs for it.
	"github.com/dotmesh-io/dotmesh/bucket/repo",
	"github.com/dotmesh-io/dotmesh/transport/bucketremote",
	"github.com/dotmesh-io/dotmesh/internal/seal",
	"github.com/klauspost/compress",
	"golang.org/x/crypto/argon2",
	"golang.org/x/crypto/scrypt",
	// The S3 client and the man page writer, which dm-node runs for it.
	"github.com/dotmesh-io/dotmesh/bucket/s3",
	"github.com/dotmesh-io/dotmesh/frontends/cli/manpage",
	"github.com/minio/",
	"github.com/tinylib/msgp",
	"github.com/rs/xid",
	"go.yaml.in/yaml",
	"gopkg.in/ini.v1",
	"github.com/spf13/cobra/doc",
	"github.com/russross/blackfriday",
	"github.com/cpuguy83/go-md2man",
	// The engine's neutral transfers and text diffs (dotmesh/light.go):
	// BLAKE3's CPU feature probe (klauspost/cpuid) alone took 0.77 ms
	// of a 3.5-4.5 ms dm start in its package init.
	"github.com/dotmesh-io/dotmesh/transport/neutral",
	"github.com/dotmesh-io/dotmesh/internal/cdc",
	"github.com/zeebo/blake3",
	"github.com/klauspost/cpuid",
	"github.com/aymanbagabas/go-udiff",
	// net/http and the TLS client every http.Client links: their package
	// inits cost a dm 0.8-1.0 ms (client/internal/h1's package doc). The
	// light client speaks HTTP/1.1 through h1; https goes to dm-node.
	"net/http",
	"crypto/tls",
	"crypto/x509",
	"golang.org/x/net/http2",
	"vendor/golang.org/x/net/http2",
}

// The light dm's import graph holds none of the node's packages.
func TestLightLinksNoNodeCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "dmlight", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -tags dmlight -deps: %v: %s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, h := range heavy {
			if p == strings.TrimSuffix(h, "/") || strings.HasPrefix(p, h) {
				t.Errorf("the light dm links %s", p)
			}
		}
	}
}

// make build links the light dm without the Green Tea collector while the
// toolchain offers that opt-out (Makefile: it costs a dm start page faults
// and never collects), and with the default collector once it does not.
func TestMakeBuildsLightDMWithoutGreenTea(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed (apt-get install make): %v", err)
	}
	out, err := exec.Command("make", "-s", "-n", "-C", filepath.Join("..", ".."), "build").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v: %s", err, out)
	}
	var light string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "-tags dmlight") && strings.Contains(l, " build ") {
			light = l
		}
	}
	if light == "" {
		t.Fatalf("make -n build shows no build of the light dm (-tags dmlight):\n%s", out)
	}
	offered := exec.Command("go", "env", "GOEXPERIMENT")
	offered.Env = append(os.Environ(), "GOEXPERIMENT=nogreenteagc")
	want := offered.Run() == nil
	if got := strings.Contains(light, `GOEXPERIMENT="nogreenteagc"`); got != want {
		t.Errorf("the light dm's build line sets GOEXPERIMENT=nogreenteagc: %v, the toolchain offers it: %v\n%s", got, want, light)
	}
}

// lightNode builds the light dm and dm-node beside it in a temporary
// directory and starts a node with them (`dm cluster init` with initArgs;
// stopped at the test's end): dir,
// the two programs, dm's environment, and run, which runs dm and returns
// its stdout, or its stderr and the error.
func lightNode(t *testing.T, initArgs ...string) (dir, dm, node string, env []string, run func(args ...string) (string, error)) {
	t.Helper()
	dir = t.TempDir()
	dm, node = filepath.Join(dir, "dm"), filepath.Join(dir, nodeProgram)
	for _, b := range [][]string{{"-tags", "dmlight", "-o", dm}, {"-o", node}} {
		if out, err := exec.Command("go", append(append([]string{"build"}, b...), ".")...).CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v: %s", b, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	env = append(os.Environ(), "DOTMESH_CONFIG="+filepath.Join(dir, "config"))
	run = func(args ...string) (string, error) {
		cmd := exec.Command(dm, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			return errb.String(), err
		}
		return out.String(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if out, err := run(append([]string{"cluster", "init", "--data-dir", data, "--port", strconv.Itoa(port), "--docker-socket", ""}, initArgs...)...); err != nil {
		t.Fatalf("dm cluster init: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := run("cluster", "stop", "--data-dir", data); err != nil {
			t.Errorf("dm cluster stop: %v: %s", err, out)
		}
	})
	pid, err := os.ReadFile(filepath.Join(data, "dm.pid"))
	if err != nil {
		t.Fatalf("the node's pid file: %v", err)
	}
	if exe, err := os.Readlink("/proc/" + strings.TrimSpace(string(pid)) + "/exe"); err != nil || exe != node {
		t.Errorf("the node runs %q (%v), want %s", exe, err, node)
	}
	return dir, dm, node, env, run
}

// A light dm runs a node through dm-node beside it, talks to it itself,
// and says in one line what is missing when dm-node is not there.
func TestLightHandsOverToNode(t *testing.T) {
	dir, _, node, _, run := lightNode(t)
	for _, args := range [][]string{{"init", "app"}, {"commit", "--allow-empty", "-m", "one"}} {
		if out, err := run(args...); err != nil {
			t.Fatalf("dm %v: %v: %s", args, err, out)
		}
	}
	out, err := run("log", "-H")
	if err != nil || !strings.Contains(out, "one") {
		t.Fatalf("dm log: %v: %q", err, out)
	}

	// What needs the S3 client or the man page writer runs in dm-node,
	// with the answers the all-in-one dm gives.
	man := filepath.Join(dir, "man1")
	if out, err := run("docs", "man", man); err != nil {
		t.Fatalf("dm docs man: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(man, "dm-commit.1")); err != nil {
		t.Errorf("dm docs man wrote no dm-commit.1: %v", err)
	}
	out, err = run("remote", "add", "b", "s3://b", "--endpoint", "http://127.0.0.1:1", "--no-encryption")
	if err == nil || !strings.Contains(out, "S3 bucket names are 3 to 63") {
		t.Errorf("dm remote add of an s3 bucket: %v: %q", err, out)
	}
	// So does what opens a file:// bucket's repository; a push to it goes
	// through the node as from the all-in-one dm.
	fb := filepath.Join(dir, "fb")
	if out, err := run("remote", "add", "fb", "file://"+fb, "--no-encryption"); err != nil || !strings.Contains(out, "made a repository without encryption") {
		t.Fatalf("dm remote add of a file bucket: %v: %q", err, out)
	}
	if out, err := run("push", "fb", "app"); err != nil {
		t.Fatalf("dm push to a file bucket: %v: %s", err, out)
	}
	if out, err := run("list", "fb"); err != nil || !strings.Contains(out, "app") {
		t.Fatalf("dm list of a file bucket: %v: %q", err, out)
	}
	if out, err := run("verify", "fb"); err != nil {
		t.Fatalf("dm verify of a file bucket: %v: %q", err, out)
	}

	if err := os.Rename(node, node+".away"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(node+".away", node)
	out, err = run("serve", "--data-dir", filepath.Join(dir, "other"))
	if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "dm-node, which is neither at "+node) {
		t.Fatalf("dm serve without dm-node: %v: %q", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); err == nil {
		t.Error("dm serve without dm-node made its data directory")
	}
	defer func() {
		if _, err := os.Stat(filepath.Join(dir, "fb2")); err == nil {
			t.Error("dm remote add of a file bucket without dm-node made its directory")
		}
	}()
	for _, args := range [][]string{{"docs", "man", man}, {"remote", "add", "b", "s3://bucket", "--no-encryption"}, {"list", "fb"}, {"remote", "add", "fb2", "file://" + filepath.Join(dir, "fb2"), "--no-encryption"}} {
		out, err = run(args...)
		if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "dm-node, which is neither at "+node) {
			t.Errorf("dm %v without dm-node: %v: %q", args, err, out)
		}
	}
	if out, err := run("version"); err != nil {
		t.Fatalf("dm version without dm-node: %v: %s", err, out)
	}
}
