package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
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

// A light dm hands each command that runs nodes, with its args as given,
// to HandOver before parsing them, and runs everything else itself; a
// failed hand-over is one line.
func TestHandOverNodeCommands(t *testing.T) {
	fullBuildOnly(t, "the bucket client")
	e, cfg := testEnv(t)
	var got [][]string
	w := Wiring{HandOver: func(args []string) error {
		got = append(got, args)
		return errors.New("dm-node is not there")
	}}
	for _, args := range [][]string{
		{"serve", "--data-dir", "/nonexistent"}, {"cluster", "init", "--bogus-flag"}, {"cluster", "join"}, {"cluster", "stop"},
		{"cluster", "reset"}, {"registry", "rebuild"}, {"store", "key", "list"}, {"--json", "serve"}, {"-c", "x", "serve"},
	} {
		got = nil
		var out, errb bytes.Buffer
		code := Run(context.Background(), IO{Stdout: &out, Stderr: &errb, Getenv: env(e)}, w, args)
		if len(got) != 1 || !slices.Equal(got[0], args) {
			t.Errorf("dm %v: handed over %v", args, got)
		}
		if args[0] == "--json" {
			if code == 0 || errb.String() != `{"error":"dm-node is not there","kind":"error"}`+"\n" {
				t.Errorf("dm %v: exit %d, stderr %q", args, code, errb.String())
			}
			continue
		}
		failsWith(t, result{out.String(), errb.String(), code}, "dm-node is not there")
	}
	// So is each command that needs a part the Wiring lacks: the man
	// page writer before parsing, an s3:// bucket's client once the
	// remote is known to be one, before anything is changed.
	for _, args := range [][]string{
		{"docs", "man", "/nonexistent/dir"}, {"docs", "man"}, {"remote", "add", "b", "s3://bk", "--endpoint", "http://127.0.0.1:1"},
	} {
		got = nil
		var out, errb bytes.Buffer
		code := Run(context.Background(), IO{Stdout: &out, Stderr: &errb, Getenv: env(e)}, w, args)
		if len(got) != 1 || !slices.Equal(got[0], args) {
			t.Errorf("dm %v: handed over %v", args, got)
		}
		failsWith(t, result{out.String(), errb.String(), code}, "dm-node is not there")
	}
	if _, err := os.Stat(cfg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a handed-over dm remote add wrote the config: %v", err)
	}
	for _, args := range [][]string{{"version"}, {"help", "serve"}, {"cluster", "--help"}, {"commit", "-m", "x", "--dot", "-bad"}, {"registry"}, {"docs", "--help"},
		{"remote", "add", "f", "file://" + t.TempDir(), "--no-encryption"}} {
		got = nil
		Run(context.Background(), IO{Stdout: io.Discard, Stderr: io.Discard, Getenv: env(e)}, w, args)
		if got != nil {
			t.Errorf("dm %v was handed over", args)
		}
	}
	// Every command named is in the tree.
	root := NewRootCommand(IO{}, Wiring{})
	for _, n := range nodeCommands {
		if c, _, err := root.Find(strings.Fields(n)); err != nil || c.CommandPath() != "dm "+n {
			t.Errorf("nodeCommands names %q, which is not a command", n)
		}
	}
}
