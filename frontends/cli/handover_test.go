//go:build !dmlight

// The light build (dmlight) leaves the bucket client to dm-node: this file's
// tests build only in the full one.

package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

// A light dm hands each command that runs nodes, with its args as given,
// to HandOver before parsing them, and runs everything else itself; a
// failed hand-over is one line.
func TestHandOverNodeCommands(t *testing.T) {
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
