// Package layers checks the dependency rules of ARCHITECTURE.md with
// `go list -deps`: they hold for the whole tree, so they are tested once,
// here, rather than by each package.
package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/dotmesh-io/dotmesh/"

// deps lists what the packages import, directly or not.
func deps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is needed to list imports: ", err)
	}
	cmd := exec.Command(goBin, append([]string{"list", "-deps"}, pkgs...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %v: %v", pkgs, err)
	}
	return strings.Fields(string(out))
}

func refuse(t *testing.T, who string, got []string, bad ...string) {
	t.Helper()
	for _, p := range got {
		for _, b := range bad {
			if p == strings.TrimSuffix(b, "/") || strings.HasPrefix(p, b) {
				t.Errorf("%s depends on %s", who, p)
			}
		}
	}
}

// Frontends reach the engine through narrow interfaces or the API client;
// what runs a node is passed in by cmd/dm.
func TestFrontendsImportNoDaemonServerStoreOrBackend(t *testing.T) {
	refuse(t, "a frontend", deps(t, "./frontends/..."),
		mod+"daemon", mod+"server", mod+"cluster/", mod+"backend/")
}

// The library knows no concrete backend, store, frontend or HTTP. Of
// internal/ it may use only the content-defined chunker, a pure function
// over bytes that neutral patches (transport/neutral) cut files with, as
// the dump backend does.
func TestEngineKnowsNoFrontendBackendStoreOrHTTP(t *testing.T) {
	var got []string
	for _, p := range deps(t, "./dotmesh") {
		if p != mod+"internal/cdc" {
			got = append(got, p)
		}
	}
	refuse(t, "package dotmesh", got,
		mod+"daemon", mod+"server", mod+"client", mod+"api", mod+"cluster/",
		mod+"backend/", mod+"frontends/", mod+"internal/", "net/http")
}

// Backends and stores depend on the engine's interfaces, never on each
// other's layers above.
func TestBackendsAndStoresImportNoLayerAbove(t *testing.T) {
	refuse(t, "a backend or store", deps(t, "./backend/...", "./cluster/...", "./bucket/..."),
		mod+"daemon", mod+"server", mod+"client", mod+"frontends/")
}
