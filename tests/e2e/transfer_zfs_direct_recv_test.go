package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// receivedBytes is n's dotmesh_transfer_bytes_total{direction="received"}.
func receivedBytes(t *testing.T, n *serveNode) int64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url()+"/metrics", nil)
	must(t, err)
	req.SetBasicAuth("admin", n.key)
	resp, err := n.httpClient().Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "dotmesh_transfer_bytes_total{") && strings.Contains(l, `direction="received"`) {
			f := strings.Fields(l)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			must(t, err)
			return int64(v)
		}
	}
	return 0
}

type auditRec struct {
	User, Action, Dot, Branch, Commit, Detail string
}

// lastPush is n's newest audit record of a push.
func lastPush(t *testing.T, e *env, n *serveNode) auditRec {
	t.Helper()
	var page struct {
		Records []auditRec `json:"records"`
	}
	e.jsonOut(&page, "--remote", n.name, "audit", "--limit", "1000")
	for _, r := range page.Records {
		if r.Action == "push" {
			return r
		}
	}
	t.Fatalf("%s has no audit record of a push", n.name)
	return auditRec{}
}

// TestTransferZFSDirectCounts: one increment pushed to a plain-HTTP node
// (direct) and to a TLS node (framed): each receiver counts in its
// received-bytes metric what its sender reports, the direct stream is the
// framed one less its framing, and both record the same audit record.
func TestTransferZFSDirectCounts(t *testing.T) {
	e, z1, z2, z3, db := zfsTrio(t)
	for _, n := range []*serveNode{z2, z3} {
		if s := e.transfer(z1, "push", n.name, "app"); s.Commits != 1 {
			t.Fatalf("first push to %s: %+v", n.name, s)
		}
	}
	must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(4, 4<<20), 0o644))
	e.commitOn(z1, "app", "two")
	head := e.logOn(z1, "app")[0].ID

	r2, r3 := receivedBytes(t, z2), receivedBytes(t, z3)
	s2 := e.transfer(z1, "push", "z2", "app")
	s3 := e.transfer(z1, "push", "z3", "app")
	if n := directReceives(t, z2); n != 1 {
		t.Fatalf("z2 received %d commit(s) directly; want 1", n)
	}
	if n := directReceives(t, z3); n != 0 {
		t.Fatalf("the TLS node received %d commit(s) directly", n)
	}
	d2, d3 := receivedBytes(t, z2)-r2, receivedBytes(t, z3)-r3
	t.Logf("direct: sent %d, received %d; framed: sent %d, received %d", s2.Bytes, d2, s3.Bytes, d3)
	if s3.Commits != 1 || d3 != s3.Bytes {
		t.Fatalf("framed push %+v: the receiver counted %d bytes", s3, d3)
	}
	if s2.Commits != 1 || d2 != s2.Bytes {
		t.Errorf("direct push %+v: the receiver counted %d bytes, the sender %d", s2, d2, s2.Bytes)
	}
	if s2.Bytes > s3.Bytes || s2.Bytes < s3.Bytes*99/100 {
		t.Errorf("the direct stream has %d bytes, the framed one %d: want the framed one less at most 1%% of framing", s2.Bytes, s3.Bytes)
	}
	a2, a3 := lastPush(t, e, z2), lastPush(t, e, z3)
	if a2 != a3 || a2.Commit != head || a2.User != "admin" || a2.Dot != "admin/app" {
		t.Errorf("audit of the direct push %+v, of the framed one %+v; want both the same, of commit %s", a2, a3, head)
	}
}

// directSender is a test's own sending end of a direct transfer: the
// request, then whatever stream the test writes on conn.
type directSender struct {
	conn net.Conn
	br   *bufio.Reader
}

// openDirect asks n for a direct receive of c (incremental from base)
// into dot app's master and returns the connection after its 101.
func openDirect(t *testing.T, n *serveNode, c dotmesh.Commit, base string) *directSender {
	t.Helper()
	var hdr bytes.Buffer
	must(t, api.WriteCommitHeader(&hdr, c))
	q := url.Values{"branch": {"master"}, "format": {dotmesh.FormatNative + "zfs"}, "base": {base}}
	req, err := http.NewRequest(http.MethodPost, n.url()+"/v1/dots/admin/app/transfer/commits?"+q.Encode(), bytes.NewReader(hdr.Bytes()))
	must(t, err)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", api.DirectProtocol)
	req.SetBasicAuth("admin", n.key)
	conn, err := net.Dial("tcp", n.addr)
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	must(t, req.Write(conn))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	must(t, err)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("direct request: %d %s", resp.StatusCode, b)
	}
	return &directSender{conn: conn, br: br}
}

// ended waits up to limit for the receiver to end the connection and
// reports whether it did.
func (d *directSender) ended(limit time.Duration) bool {
	_ = d.conn.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, d.br)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// runningReceive says which zfs receive into pool p runs, "" if none:
// the command, or, through zfs-fuse's command socket, zfs-fuse reading a
// connection to addr, the receiving node's.
func runningReceive(p, addr string) string {
	if pid := processWith("receive", "-F", p); pid != 0 {
		return fmt.Sprintf("zfs receive (pid %d)", pid)
	}
	if fuseHolds(addr, "") {
		return "zfs-fuse's receive through its command socket"
	}
	return ""
}

// waitNoReceive waits up to limit for no zfs receive into p to run (see
// runningReceive), and says what still runs then.
func waitNoReceive(limit time.Duration, p, addr string) string {
	deadline := time.Now().Add(limit)
	for {
		what := runningReceive(p, addr)
		if what == "" || time.Now().After(deadline) {
			return what
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// incomingBytes is the bytes of z2's not active incoming record of app.
func incomingBytes(t *testing.T, e *env, n *serveNode) int64 {
	t.Helper()
	for _, r := range e.incomingOn(n) {
		if r.Name == "app" {
			if r.Active {
				t.Fatalf("%s's incoming record of app is active: %+v", n.name, r)
			}
			return r.Bytes
		}
	}
	t.Fatalf("%s has no incoming record of app", n.name)
	return 0
}

// busyRefusals counts the receives n refused because zfs-fuse still
// worked on an earlier one.
func busyRefusals(t *testing.T, n *serveNode) int {
	b, err := os.ReadFile(n.log)
	must(t, err)
	return bytes.Count(b, []byte("dataset is busy"))
}

// pushBusy pushes app from z1 to z2, again while z2 refuses the stream
// as busy: zfs-fuse holds a copy of a cut stream's socket and, having
// read its end, destroys the partial receive after the node's zfs command
// ended, so a receive that comes in between fails with "dataset is busy"
// (with kernel ZFS the command itself ends the receive).
func pushBusy(t *testing.T, e *env, z1, z2 *serveNode) transferSummary {
	t.Helper()
	for try := 0; ; try++ {
		r := e.dm("--remote", z1.name, "push", z2.name, "app", "--json")
		if r.code == 0 {
			var s transferSummary
			must(t, json.Unmarshal([]byte(r.out), &s))
			return s
		}
		if try == 20 || !strings.Contains(r.err, "dataset is busy") {
			t.Fatalf("push: %s", r)
		}
		t.Logf("z2 refused the push as busy: zfs-fuse was still ending the last receive")
		time.Sleep(200 * time.Millisecond)
	}
}

// sendPart opens a direct stream to n and sends part of it, again while
// n refuses it as busy (pushBusy); it returns the tries refused.
func sendPart(t *testing.T, n *serveNode, c dotmesh.Commit, base string, part []byte) (*directSender, int) {
	t.Helper()
	for try := 0; ; try++ {
		busy := busyRefusals(t, n)
		d := openDirect(t, n, c, base)
		_, err := d.conn.Write(part)
		if err == nil {
			return d, try
		}
		time.Sleep(200 * time.Millisecond)
		if try == 20 || busyRefusals(t, n) == busy {
			t.Fatalf("sending part of a direct stream: %v", err)
		}
		t.Logf("z2 refused the stream as busy: zfs-fuse was still ending the last receive")
	}
}

// TestTransferZFSDirectStalled: a sender that sends part of a direct
// stream and then nothing, the connection open. Aborting the incoming
// transfer cuts the stream at once; a sender that closes ends it at once;
// left alone, the receiver cuts it after --transfer-idle. Either way zfs receive ends (zfs-fuse too: the
// sender sees the connection end), nothing is stored, the incoming record
// counts the bytes that came, and the dot is free: the real push then
// brings the commit direct.
func TestTransferZFSDirectStalled(t *testing.T) {
	zfstest.Require(t)
	const idle = 4 * time.Second
	e, z1, z2, p1, p2, db := zfsPair(t, "", "", "--transfer-idle", idle.String())
	before := e.logOn(z2, "app")
	must(t, os.WriteFile(filepath.Join(db, "big"), randomBytes(11, 32<<20), 0o644))
	e.commitOn(z1, "app", "two")
	cl, err := client.New(z1.url(), "admin", z1.key)
	must(t, err)
	log, err := cl.Log(context.Background(), dotmesh.DotName{Name: "app"}, "master", 2)
	must(t, err)
	c2, base := log[0], string(log[1].ID)
	var snaps [2]string
	for _, l := range strings.Split(zfstest.ZFS(t, "list", "-H", "-o", "name", "-t", "snapshot", "-r", p1), "\n") {
		for i, id := range []string{base, string(c2.ID)} {
			if strings.HasSuffix(l, "@"+id) {
				snaps[i] = l
			}
		}
	}
	if snaps[0] == "" || snaps[1] == "" {
		t.Fatalf("no snapshots of %s and %s on %s", base, c2.ID, p1)
	}
	stream, err := exec.Command("zfs", "send", "-i", snaps[0], snaps[1]).Output()
	must(t, err)

	// Aborted while it stalls.
	d := openDirect(t, z2, c2, base)
	_, err = d.conn.Write(stream[:len(stream)/2])
	must(t, err)
	time.Sleep(300 * time.Millisecond)
	if runningReceive(p2, z2.addr) == "" {
		t.Fatal("z2 runs no zfs receive for the stalled stream: the test proves nothing")
	}
	start := time.Now()
	e.on(z2, "transfers", "abort", "app")
	if !d.ended(30 * time.Second) {
		t.Fatal("the aborted direct stream's connection stays open")
	}
	took := time.Since(start)
	if what := waitNoReceive(5*time.Second, p2, z2.addr); what != "" {
		t.Errorf("%s runs on after the abort", what)
	}
	logb, _ := os.ReadFile(z2.log)
	if took >= idle || bytes.Contains(logb, []byte("sender sent nothing")) {
		t.Errorf("the abort ended the stream after %s; the idle cut, not the abort, did", took)
	}
	t.Logf("abort ended the stalled stream in %s", took.Round(time.Millisecond))

	// The sender gone mid-stream: zfs receive reads the end and fails.
	d, _ = sendPart(t, z2, c2, base, stream[:len(stream)/2])
	start = time.Now()
	d.conn.Close()
	if what := waitNoReceive(5*time.Second, p2, z2.addr); what != "" {
		t.Errorf("%s runs on after the sender's connection closed", what)
	}
	t.Logf("zfs receive ended %s after the sender closed", time.Since(start).Round(time.Millisecond))
	if got := ids(e.logOn(z2, "app")); got != ids(before) {
		t.Fatalf("after a stream cut short z2's history is %s, want %s", got, ids(before))
	}

	// Left alone: cut after idle.
	prev := incomingBytes(t, e, z2)
	sent := len(stream) / 3
	d, refused := sendPart(t, z2, c2, base, stream[:sent])
	start = time.Now()
	if !d.ended(idle + 30*time.Second) {
		t.Fatal("the stalled direct stream's connection stays open")
	}
	took = time.Since(start)
	if took < idle-time.Second {
		t.Errorf("the stalled stream was cut after %s, before the idle time %s", took, idle)
	}
	t.Logf("the stalled stream was cut after %s (idle %s)", took.Round(time.Millisecond), idle)
	if what := waitNoReceive(5*time.Second, p2, z2.addr); what != "" {
		t.Errorf("%s runs on after the cut", what)
	}
	if logb, _ := os.ReadFile(z2.log); !bytes.Contains(logb, []byte("sender sent nothing")) {
		t.Error("z2 did not log the idle cut")
	}
	if got := ids(e.logOn(z2, "app")); got != ids(before) {
		t.Fatalf("after the stalled streams z2's history is %s, want %s", got, ids(before))
	}
	// The record counts the bytes of every run: this one's are the third
	// sent (and what came of tries refused as busy, which zfs-fuse's
	// cleanup makes this test's to wait out).
	if got := incomingBytes(t, e, z2) - prev; got != int64(sent) && (refused == 0 || got < int64(sent)) {
		t.Errorf("z2's incoming record grew by %d bytes; want the %d sent (%d tries refused as busy)", got, sent, refused)
	}

	// The dot is free: the real push goes direct.
	if s := pushBusy(t, e, z1, z2); s.Commits != 1 {
		t.Fatalf("push after the stalled streams: %+v", s)
	}
	if n := directReceives(t, z2); n != 1 {
		t.Fatalf("z2 received %d commit(s) directly; want 1", n)
	}
	if !sameTree(readTree(t, db), readTree(t, e.pathOn(z2, "app.db"))) {
		t.Fatal("z2's tree differs after the push")
	}
	known := ids(e.logOn(z2, "app"))
	if ids(e.logOn(z1, "app")) != known {
		t.Fatal("histories differ after the push")
	}
	all := zfstest.ZFS(t, "list", "-H", "-o", "name", "-t", "all", "-r", p2)
	for _, l := range strings.Split(all, "\n") {
		if _, snap, ok := strings.Cut(l, "@"); ok && !strings.Contains(known, snap) || strings.Contains(l, "%") {
			t.Errorf("%s is no commit's storage:\n%s", l, all)
		}
	}
}
