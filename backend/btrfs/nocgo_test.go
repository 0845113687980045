//go:build linux && cgo

package btrfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestBuildWithoutCgo builds and tests this package with CGO_ENABLED=0
// (where Open reports ErrNotSupported) and builds it for another OS, so
// the rest of the module stays buildable without cgo.
func TestBuildWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the package twice more; skipped with -short")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, c := range []struct {
		env  []string
		args []string
	}{
		{[]string{"CGO_ENABLED=0"}, []string{"test", "-count=1", "-run", "TestOpenUnsupported|TestFrame", "."}},
		{[]string{"CGO_ENABLED=0", "GOOS=darwin"}, []string{"vet", "."}},
	} {
		cmd := exec.Command(gobin, c.args...)
		cmd.Env = append(os.Environ(), c.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v go %v: %v\n%s", c.env, c.args, err, out)
		}
	}
}
