package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestTransfersListAndAbort: a receive cut off on the node shows in dm list
// and dm transfers (all output modes); dm transfers abort ends it.
func TestTransfersListAndAbort(t *testing.T) {
	ctx := context.Background()
	e, n := withNode(t)
	mustRun(t, e, "init", "src")
	p := strings.TrimSpace(mustRun(t, e, "path", "src"))
	if err := os.WriteFile(filepath.Join(p, "f"), bytes.Repeat([]byte("data "), 200000), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "commit", "--dot", "src", "-m", "one")
	src := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "src"}
	log, err := n.Node.Log(ctx, src, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := n.Node.TransferPeer().Send(ctx, src, log[0].ID, nil, dotmesh.FormatNative+"dump", &stream); err != nil {
		t.Fatal(err)
	}
	copyDot := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "copy"}
	cut := io.LimitReader(&stream, int64(stream.Len()/2))
	if err := n.Node.TransferPeer().Receive(ctx, copyDot, "master", *log[0], nil, dotmesh.FormatNative+"dump", cut); err == nil {
		t.Fatal("a cut stream was received")
	}

	if out := mustRun(t, e, "list"); !strings.Contains(out, "incoming: transfer creating copy@master, ") || !strings.Contains(out, "(see dm transfers)") {
		t.Fatalf("dm list does not show the incoming transfer:\n%s", out)
	}
	if out := mustRun(t, e, "list", "-H"); strings.Contains(out, "incoming") {
		t.Fatalf("dm list -H shows more than the dots:\n%s", out)
	}
	if out := mustRun(t, e, "transfers"); !strings.Contains(out, "DOT") || !strings.Contains(out, "copy") || !strings.Contains(out, "ago") {
		t.Fatalf("dm transfers:\n%s", out)
	}
	if f := strings.Split(strings.TrimSpace(mustRun(t, e, "transfers", "-H")), "\t"); len(f) != 8 || f[0] != "copy" || f[1] != "master" || f[2] != "yes" || f[4] != "0" || f[7] != "no" {
		t.Fatalf("dm transfers -H: %q", f)
	}
	var ts []dotmesh.IncomingTransfer
	if err := json.Unmarshal([]byte(mustRun(t, e, "transfers", "--json")), &ts); err != nil || len(ts) != 1 || ts[0].Bytes == 0 {
		t.Fatalf("dm transfers --json: %+v %v", ts, err)
	}
	failsWith(t, runDM(t, e, "transfers", "abort", "nosuch"), "no incoming transfer of nosuch")
	if out := mustRun(t, e, "transfers", "abort", "copy@master"); !strings.Contains(out, "aborted the incoming transfer of copy@master") || !strings.Contains(out, "freed ") {
		t.Fatalf("dm transfers abort:\n%s", out)
	}
	if out := mustRun(t, e, "transfers"); out != "no incoming transfers\n" {
		t.Fatalf("dm transfers after abort: %q", out)
	}
	if out := mustRun(t, e, "transfers", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("dm transfers --json after abort: %q", out)
	}
}
