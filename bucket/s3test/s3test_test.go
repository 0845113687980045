package s3test_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket/s3test"
)

// The script builds the version the harness looks for.
func TestScriptVersion(t *testing.T) {
	b, err := os.ReadFile("../../scripts/ensure-seaweedfs.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "version=${SEAWEEDFS_VERSION:-"+s3test.Version+"}") {
		t.Fatalf("scripts/ensure-seaweedfs.sh does not build SeaweedFS %s, the version s3test.Version names", s3test.Version)
	}
}

// Start gives a server that stores objects; Kill stops its gateway at
// once and Restart brings it back, the data kept behind it.
func TestStartKillRestart(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	st := srv.Open(t, "harness")
	if err := st.Put(ctx, "o", strings.NewReader("kept"), 4); err != nil {
		t.Fatal(err)
	}
	pid := srv.PID()
	if pid == 0 {
		t.Fatal("no PID for a running server")
	}
	srv.Kill()
	if srv.PID() != 0 {
		t.Fatal("a killed server has a PID")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("process %d still runs after Kill", pid)
	}
	if _, err := st.Stat(ctx, "o"); err == nil {
		t.Fatal("Stat answered with the server killed")
	}
	began := time.Now()
	srv.Restart(t)
	t.Logf("the gateway restarted in %v", time.Since(began).Round(time.Millisecond))
	if oi, err := st.Stat(ctx, "o"); err != nil || oi.Size != 4 {
		t.Fatalf("after restart: %+v, %v", oi, err)
	}
}
