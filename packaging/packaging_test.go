// Package packaging holds what installs and runs dm on a machine: the
// Debian package (deb/, built by `make deb`), the systemd unit and its root
// drop-in (systemd/), and the image's files (docker/; the Dockerfile is at
// the repository root, tested by tests/e2e TestImage). These tests build
// the package, check it with lintian, install it into a temporary root with
// dpkg and check the unit there with systemd-analyze.
package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// need fails the test, naming the Debian package, when a tool is missing.
func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s not found: apt-get install %s (make test installs it)", tool, pkg)
	}
}

// run runs a command and returns its combined output and error.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func runOK(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

var deb struct {
	once          sync.Once
	dir, path     string
	version, err  string // version: what `make version` stamps into dm
	root, install string // the repository; a root the package is unpacked in
}

// builtDeb builds the package once per test binary with `make deb` into a
// temp dir and unpacks it with dpkg into an empty root, as dpkg installs
// it (the maintainer scripts do not run: they would change this machine).
func builtDeb(t *testing.T) (path, root, version string) {
	t.Helper()
	need(t, "make", "make")
	need(t, "dpkg-deb", "dpkg")
	need(t, "strip", "binutils")
	deb.once.Do(func() {
		fail := func(format string, err error, out string) { deb.err = format + ": " + err.Error() + "\n" + out }
		repo, err := filepath.Abs("..")
		if err != nil {
			deb.err = err.Error()
			return
		}
		if deb.dir, err = os.MkdirTemp("", "dm-deb-test-"); err != nil {
			deb.err = err.Error()
			return
		}
		out, err := run("make", "-s", "-C", repo, "version")
		if err != nil {
			fail("make version", err, out)
			return
		}
		deb.version = strings.TrimSpace(out)
		if out, err = run("make", "-s", "-C", repo, "deb", "DEB_DIR="+filepath.Join(deb.dir, "out")); err != nil {
			fail("make deb", err, out)
			return
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		deb.path = lines[len(lines)-1]
		deb.install = filepath.Join(deb.dir, "root")
		dpkgDir := filepath.Join(deb.install, "var/lib/dpkg")
		for _, d := range []string{"info", "updates"} {
			os.MkdirAll(filepath.Join(dpkgDir, d), 0o755)
		}
		os.WriteFile(filepath.Join(dpkgDir, "status"), nil, 0o644)
		if out, err := run("dpkg", "--root="+deb.install, "--log=/dev/null", "--unpack", deb.path); err != nil {
			fail("dpkg --unpack", err, out)
		}
	})
	if deb.err != "" {
		t.Fatal(deb.err)
	}
	return deb.path, deb.install, deb.version
}

func TestMain(m *testing.M) {
	code := m.Run()
	if deb.dir != "" {
		os.RemoveAll(deb.dir)
	}
	os.Exit(code)
}

// TestDebLintian: lintian finds no error and no warning (the overrides in
// deb/lintian-overrides say why each is accepted).
func TestDebLintian(t *testing.T) {
	need(t, "lintian", "lintian")
	path, _, _ := builtDeb(t)
	out, err := run("lintian", "--fail-on", "error,warning", path)
	if err != nil {
		t.Fatalf("lintian %s: %v\n%s", filepath.Base(path), err, out)
	}
	t.Logf("lintian: %s", strings.TrimSpace(out))
}

// TestDebInstalled checks the package's fields and the installed files, and
// runs the installed dm.
func TestDebInstalled(t *testing.T) {
	path, root, version := builtDeb(t)
	fields := runOK(t, "dpkg-deb", "--field", path, "Package", "Version", "Architecture", "Depends")
	if !strings.Contains(fields, "Package: dotmesh\n") || !strings.Contains(fields, "Depends: adduser") {
		t.Errorf("package fields:\n%s", fields)
	}
	// The Debian version holds dm's: describe's hyphens become +.
	upstream := strings.ReplaceAll(strings.TrimPrefix(version, "v"), "-", "+")
	if !strings.Contains(fields, "Version: ") || !strings.Contains(fields, upstream+"-1\n") {
		t.Errorf("package version does not carry dm's version %q:\n%s", version, fields)
	}
	if st := runOK(t, "dpkg", "--root="+root, "--status", "dotmesh"); !strings.Contains(st, "Status: install ok unpacked") {
		t.Errorf("dpkg --status after --unpack:\n%s", st)
	}
	// Every file matches the package's md5sums.
	if out, err := run("dpkg", "--root="+root, "--verify", "dotmesh"); err != nil || out != "" {
		t.Errorf("dpkg --verify dotmesh: %v\n%s", err, out)
	}

	for _, f := range []string{
		"usr/bin/dm",
		"lib/systemd/system/dotmesh.service",
		"usr/share/doc/dotmesh/examples/root.conf",
		"usr/share/doc/dotmesh/copyright",
		"usr/share/doc/dotmesh/changelog.gz",
		"usr/share/doc/dotmesh/changelog.Debian.gz",
		"usr/share/bash-completion/completions/dm",
		"usr/share/zsh/vendor-completions/_dm",
		"usr/share/fish/vendor_completions.d/dm.fish",
		"usr/share/man/man1/dm.1.gz",
		"usr/share/man/man1/dm-serve.1.gz",
	} {
		fi, err := os.Stat(filepath.Join(root, f))
		if err != nil || fi.Size() == 0 {
			t.Errorf("installed %s: missing or empty (%v)", f, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/dotmesh/copyright")); !bytes.Contains(b, []byte("License: Apache-2.0")) {
		t.Errorf("copyright names no Apache-2.0 licence:\n%s", b)
	}
	if s := gunzip(t, filepath.Join(root, "usr/share/doc/dotmesh/changelog.gz")); !strings.HasPrefix(s, "# Changelog") {
		t.Errorf("changelog.gz is not the project's CHANGELOG.md: %.80q", s)
	}
	if s := gunzip(t, filepath.Join(root, "usr/share/man/man1/dm-serve.1.gz")); !strings.Contains(s, ".TH \"DM-SERVE\"") {
		t.Errorf("dm-serve.1.gz is no man page of dm serve: %.200q", s)
	}

	dm := filepath.Join(root, "usr/bin/dm")
	if out := runOK(t, dm, "--version"); out != "Client: "+version+"\n" {
		t.Errorf("installed dm --version printed %q, want the build's %q", out, version)
	}
	if out := runOK(t, dm, "serve", "--help"); !strings.Contains(out, "dotmesh.service") {
		t.Errorf("dm serve --help does not point to the systemd unit dotmesh.service:\n%s", out)
	}
	need(t, "bash", "bash")
	comp := filepath.Join(root, "usr/share/bash-completion/completions/dm")
	if out := runOK(t, "bash", "-c", `source "$1" && complete -p dm`, "bash", comp); !strings.Contains(out, " dm") {
		t.Errorf("the bash completion registers nothing for dm: %q", out)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		runOK(t, "sh", "-n", filepath.Join(root, "var/lib/dpkg/info/dotmesh."+s))
	}
	if b, _ := os.ReadFile(filepath.Join(root, "var/lib/dpkg/info/dotmesh.postinst")); !bytes.Contains(b, []byte("adduser --system")) {
		t.Errorf("postinst makes no system user:\n%s", b)
	}
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// TestSystemdUnit verifies the unit as installed by the package, alone and
// with the root drop-in, with systemd-analyze verify (no output: any
// unknown key or bad value is printed, and fails), and bounds its exposure
// with systemd-analyze security. Both run offline against the temporary
// root: this machine's PID 1 need not be systemd, and nothing is started.
func TestSystemdUnit(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	_, pkgRoot, _ := builtDeb(t)
	// A root of its own: the installed package plus the system's units
	// (the targets the unit orders itself after).
	root := t.TempDir()
	runOK(t, "cp", "-a", pkgRoot+"/.", root)
	sys := "/usr/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(sys, "multi-user.target")); err != nil {
		t.Fatalf("%s has no multi-user.target: systemd-analyze verify needs the systemd package's units (apt-get install systemd)", sys)
	}
	os.MkdirAll(filepath.Join(root, "usr/lib/systemd"), 0o755)
	runOK(t, "cp", "-a", sys, filepath.Join(root, "usr/lib/systemd/"))

	verify := func(what string) {
		t.Helper()
		out, err := run("systemd-analyze", "verify", "--man=no", "--root="+root, "dotmesh.service")
		if err != nil || out != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", what, err, out)
		}
	}
	// Exposure on systemd's scale of 0 to 10 (10 = unprotected), checked
	// with --threshold in tenths.
	security := func(what string, max int) {
		t.Helper()
		out, err := run("systemd-analyze", "security", "--offline=yes", "--root="+root, "--threshold="+strconv.Itoa(max), "dotmesh.service")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure above %d.%d: %v\n%s", what, max/10, max%10, err, out)
		}
		t.Logf("%s: %s", what, lines[len(lines)-1])
	}
	verify("dotmesh.service")
	security("dotmesh.service", 20)

	dropIn := filepath.Join(root, "etc/systemd/system/dotmesh.service.d")
	os.MkdirAll(dropIn, 0o755)
	runOK(t, "cp", filepath.Join(root, "usr/share/doc/dotmesh/examples/root.conf"), dropIn)
	verify("dotmesh.service with root.conf")
	security("dotmesh.service with root.conf", 70)
}

// TestUnitCommandUnprivileged runs the installed unit's ExecStart as the
// unit would: an unprivileged user (nobody standing in for dotmesh), no
// new privileges, no capability, umask 0077, its data directory made for
// it as StateDirectory does (moved to a temp dir). The node must serve,
// and commit a file, with none of root's powers: the unit grants it none.
func TestUnitCommandUnprivileged(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test needs root, to drop to an unprivileged user with setpriv as systemd would")
	}
	need(t, "setpriv", "util-linux")
	_, root, _ := builtDeb(t)
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/dotmesh.service"))
	if err != nil {
		t.Fatal(err)
	}
	var execStart []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			execStart = strings.Fields(v)
		}
	}
	if len(execStart) < 2 || execStart[0] != "/usr/bin/dm" || execStart[1] != "serve" {
		t.Fatalf("the unit's ExecStart %q is not /usr/bin/dm serve ...", execStart)
	}

	// Not t.TempDir: its parents are 0700, closed to the unprivileged user.
	dir, err := os.MkdirTemp("", "dm-unit-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "state")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	if err := os.Chown(data, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	args := []string{"--reuid", strconv.Itoa(nobody), "--regid", strconv.Itoa(nobody), "--clear-groups",
		"--no-new-privs", "--bounding-set", "-all", "--inh-caps", "-all", "--",
		filepath.Join(root, "usr/bin/dm")}
	for _, a := range execStart[1:] {
		args = append(args, strings.ReplaceAll(a, "/var/lib/dotmesh", data))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args = append(args, "--listen", addr)
	node := exec.Command("setpriv", args...)
	node.Env = []string{"HOME=" + data, "PATH=/usr/bin:/bin"}
	var logs bytes.Buffer
	node.Stdout, node.Stderr = &logs, &logs
	// umask 0077 as the unit's UMask, for the node only.
	old := syscall.Umask(0o077)
	err = node.Start()
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- node.Wait() }()
	t.Cleanup(func() {
		node.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			node.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("the unit's dm serve, unprivileged, exited before serving: %v\n%s", err, logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unit's dm serve, unprivileged, did not answer /healthz within 30s:\n%s", logs.String())
		}
	}

	key, err := os.ReadFile(filepath.Join(data, "admin-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(data, "admin-api-key")); err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != nobody {
		t.Errorf("admin-api-key: %v %v, want mode 0600 owned by the unit's user", fi.Mode(), err)
	}
	home := filepath.Join(dir, "client")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	dm := func(args ...string) string {
		t.Helper()
		c := exec.Command(filepath.Join(root, "usr/bin/dm"), append([]string{"-c", filepath.Join(home, "config")}, args...)...)
		c.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "DOTMESH_PASSWORD=" + strings.TrimSpace(string(key))}
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("dm %s: %v\n%s\nnode log:\n%s", strings.Join(args, " "), err, out, logs.String())
		}
		return string(out)
	}
	dm("remote", "add", "unit", "admin@"+addr)
	dm("init", "app")
	path := strings.TrimSpace(dm("path", "app"))
	// As an application running as the unit's user would write it.
	runOK(t, "setpriv", "--reuid", strconv.Itoa(nobody), "--regid", strconv.Itoa(nobody), "--clear-groups",
		"sh", "-c", `echo v1 > "$1/file"`, "sh", path)
	dm("commit", "--dot", "app", "-m", "as the unit's user")
	if out := dm("log", "--dot", "app"); !strings.Contains(out, "as the unit's user") {
		t.Errorf("dm log after a commit on the unprivileged node:\n%s", out)
	}
}
