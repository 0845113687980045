package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/bucket/s3"
	"github.com/dotmesh-io/dotmesh/daemon"
	"github.com/dotmesh-io/dotmesh/frontends/cli/manpage"
)

// testWiring lets `dm serve` reach the real daemon, whose refusals the
// tests check through the CLI. The commands that start and stop nodes run
// with cmd/dm's whole wiring in tests/e2e.
var testWiring = Wiring{Serve: daemon.Run, RebuildRegistry: daemon.RebuildRegistry, StoreEncrypted: daemon.StoreEncrypted, CheckStorePassword: daemon.CheckStorePassword,
	StoreKeys: daemon.StoreKeys, NodeRunning: daemon.NodeRunning, S3Credentials: s3.DefaultCredentials, ManPages: manpage.Write}

// A dm built without the daemon refuses the commands that run nodes, in
// one line, and still does everything else.
func TestUnwiredRefusesNodeCommands(t *testing.T) {
	e, _ := testEnv(t)
	key := filepath.Join(t.TempDir(), "cluster-key")
	if err := os.WriteFile(key, []byte("k3y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve"}, {"cluster", "init"}, {"cluster", "stop"}, {"cluster", "reset"}, {"registry", "rebuild"},
		{"cluster", "join", "--etcd-endpoints", "http://127.0.0.1:2379", "--cluster-key-file", key},
	} {
		var out, errb bytes.Buffer
		code := Run(context.Background(), IO{Stdout: &out, Stderr: &errb, Getenv: env(e)}, Wiring{}, args)
		failsWith(t, result{out.String(), errb.String(), code}, "passes no cli.Wiring")
	}
	var out bytes.Buffer
	if code := Run(context.Background(), IO{Stdout: &out, Getenv: env(e)}, Wiring{}, []string{"version"}); code != 0 || out.Len() == 0 {
		t.Fatalf("dm version without wiring: code %d, output %q", code, out.String())
	}
}

// Main reads the program name from its args, not from os.Args: run as
// kubelet's Flex driver it answers a driver call.
func TestMainProgramNameFromArgs(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"/usr/libexec/kubernetes/kubelet-plugins/volume/exec/dotmesh.io~dm/dm", "init"}, strings.NewReader(""), &out, &errb, testWiring)
	if code != 0 || !strings.Contains(out.String(), `"status":"Success"`) {
		t.Fatalf("as the Flex driver: code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code = Main([]string{"/usr/bin/dm", "init"}, strings.NewReader(""), &out, &errb, Wiring{})
	if code == 0 || !strings.Contains(errb.String(), "usage: dm init DOT") {
		t.Fatalf("as dm: code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
