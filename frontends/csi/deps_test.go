package csi_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The Docker and CSI frontends reach the engine through their own narrow
// Node interfaces: neither imports a store, the server or the daemon.
func TestFrontendsImportNoStoreServerOrDaemon(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("the go command is needed to list the frontends' imports: ", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".", "../docker").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const mod = "github.com/dotmesh-io/dotmesh/"
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{mod + "cluster/", mod + "server", mod + "daemon"} {
			if strings.HasPrefix(p, bad) {
				t.Errorf("a frontend depends on %s", p)
			}
		}
	}
}
