//go:build linux

package fdleak

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestChildDoesNotInherit opens a descriptor without close-on-exec, as a
// wrapper would hand one down, and checks that a child started after
// CloseInheritedOnExec no longer has it while one started before does.
func TestChildDoesNotInherit(t *testing.T) {
	fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	childHas := func() bool {
		t.Helper()
		// The child lists its own descriptors: fd is there only if inherited.
		out, err := exec.Command("sh", "-c", "ls /proc/$$/fd").Output()
		if err != nil {
			t.Fatalf("listing the child's descriptors: %v", err)
		}
		for _, f := range strings.Fields(string(out)) {
			if f == strconv.Itoa(fd) {
				return true
			}
		}
		return false
	}
	if !childHas() {
		t.Fatalf("descriptor %d without close-on-exec was not inherited: the check cannot see inheritance", fd)
	}
	CloseInheritedOnExec()
	if childHas() {
		t.Fatalf("descriptor %d still inherited after CloseInheritedOnExec", fd)
	}
}
