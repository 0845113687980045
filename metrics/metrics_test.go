package metrics_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dotmesh-io/dotmesh/backend/dump/source/sourcetest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/metrics"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// node opens a dump node whose metrics are m.
func node(t *testing.T, m *metrics.Metrics) *dotmesh.Node {
	t.Helper()
	n, _ := servertest.OpenNodeWith(t, t.TempDir(), servertest.Logger(t), m)
	t.Cleanup(func() { n.Close() })
	m.Watch(n)
	return n
}

// value reads one series of the gathered metrics, failing when absent.
func value(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue()
			case s.Gauge != nil:
				return s.Gauge.GetValue()
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// A workload on two real nodes (commits, a database source, a push from
// one to the other, gc, verify, a failed checkout) shows in both nodes'
// metrics with the right counts, and the exposition passes promtool.
func TestWorkload(t *testing.T) {
	sourcetest.SQLite3(t)
	ctx := context.Background()
	ma, mb := metrics.New(metrics.Options{Version: "v-test"}), metrics.New(metrics.Options{Version: "v-test"})
	a, b := node(t, ma), node(t, mb)

	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	if _, err := a.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "app.db")
	sourcetest.SQLite(t, db, `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'one');`)
	if err := a.Sources().Add(ctx, dotmesh.VolumeName{Dot: app, Subdot: "notes"}, dotmesh.SourceSpec{Kind: "sqlite", URL: "sqlite://" + db}); err != nil {
		t.Fatal(err)
	}
	dir, err := a.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: "files"})
	if err != nil {
		t.Fatal(err)
	}
	// The same MiB twice: deduplicated.
	blob := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	for _, f := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, f), blob, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one"}); err != nil {
		t.Fatal(err)
	}
	sourcetest.SQLite(t, db, `INSERT INTO notes VALUES (2, 'two');`)
	if _, err := a.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "two"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "nothing changed"}); err == nil {
		t.Fatal("a commit of nothing was made")
	}
	if _, err := a.Checkout(ctx, app, "no-such-branch", dotmesh.CheckoutOptions{}); err == nil {
		t.Fatal("a checkout of a missing branch succeeded")
	}
	if _, err := a.Checkout(ctx, app, "dev", dotmesh.CheckoutOptions{Create: true}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Push(ctx, app, dotmesh.DefaultBranch, dotmesh.LocalTransport(b), dotmesh.TransferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.GC(ctx, dotmesh.GCOptions{Keep: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, nil); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		m      *metrics.Metrics
		name   string
		labels map[string]string
		want   float64
	}{
		{ma, "dotmesh_operations_total", map[string]string{"op": "commit", "result": "ok"}, 2},
		{ma, "dotmesh_operations_total", map[string]string{"op": "commit", "result": "error"}, 1},
		{ma, "dotmesh_operation_duration_seconds", map[string]string{"op": "commit"}, 3},
		{ma, "dotmesh_operations_total", map[string]string{"op": "checkout", "result": "ok"}, 1},
		{ma, "dotmesh_operations_total", map[string]string{"op": "checkout", "result": "error"}, 1},
		{ma, "dotmesh_operations_total", map[string]string{"op": "push", "result": "ok"}, 1},
		{ma, "dotmesh_operations_total", map[string]string{"op": "gc", "result": "ok"}, 1},
		{ma, "dotmesh_operations_total", map[string]string{"op": "verify", "result": "ok"}, 1},
		{ma, "dotmesh_operations_total", map[string]string{"op": "receive", "result": "ok"}, 0},
		{ma, "dotmesh_transfers_in_progress", map[string]string{"op": "push"}, 0},
		{ma, "dotmesh_source_dumps_total", map[string]string{"kind": "sqlite"}, 2},
		{ma, "dotmesh_source_dump_duration_seconds", map[string]string{"kind": "sqlite"}, 2},
		{ma, "dotmesh_gc_removed_commits_total", nil, 1},
		{ma, "dotmesh_dots", nil, 1},
		{ma, "dotmesh_branches", nil, 2},
		{ma, "dotmesh_build_info", map[string]string{"version": "v-test"}, 1},
		{mb, "dotmesh_operations_total", map[string]string{"op": "receive", "result": "ok"}, float64(res.Commits)},
		{mb, "dotmesh_operations_total", map[string]string{"op": "push", "result": "ok"}, 0},
		{mb, "dotmesh_dots", nil, 1},
		{mb, "dotmesh_branches", nil, 1},
		{mb, "dotmesh_transfer_bytes_total", map[string]string{"direction": "sent"}, 0},
	} {
		if got := value(t, c.m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// What a sent, b received: the same stream bytes.
	sent := value(t, ma, "dotmesh_transfer_bytes_total", map[string]string{"direction": "sent"})
	if recv := value(t, mb, "dotmesh_transfer_bytes_total", map[string]string{"direction": "received"}); sent <= 0 || sent != recv || sent != float64(res.Bytes) {
		t.Errorf("a sent %v bytes, b received %v, the push reports %d", sent, recv, res.Bytes)
	}
	if v := value(t, ma, "dotmesh_source_dump_bytes_total", map[string]string{"kind": "sqlite"}); v <= 0 {
		t.Errorf("dotmesh_source_dump_bytes_total{kind=sqlite} = %v, want > 0", v)
	}
	if v := value(t, ma, "dotmesh_commit_added_bytes_total", nil); v <= 0 {
		t.Errorf("dotmesh_commit_added_bytes_total = %v, want > 0", v)
	}
	stored := value(t, ma, "dotmesh_store_bytes", map[string]string{"backend": "dump"})
	logical := value(t, ma, "dotmesh_store_logical_bytes", map[string]string{"backend": "dump"})
	ratio := value(t, ma, "dotmesh_store_dedup_ratio", map[string]string{"backend": "dump"})
	// Two identical, compressible MiB: at least twice the logical bytes.
	if stored <= 0 || logical < 2<<20 || ratio < 2 || ratio != logical/stored {
		t.Errorf("store: %v bytes stored, %v logical, ratio %v", stored, logical, ratio)
	}
	if objs := value(t, ma, "dotmesh_store_objects", map[string]string{"backend": "dump"}); objs <= 0 {
		t.Errorf("dotmesh_store_objects = %v", objs)
	}

	if problems, err := testutil.GatherAndLint(ma.Registry()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	promtoolCheck(t, ma)
}

// promtoolCheck runs `promtool check metrics` on what Handler serves.
func promtoolCheck(t *testing.T, m *metrics.Metrics) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool (Debian package prometheus) is needed: %v; install it with scripts/ensure-packages.sh prometheus", err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	if !strings.Contains(string(body), "# HELP dotmesh_operations_total") {
		t.Errorf("the exposition lacks dotmesh_operations_total:\n%.1000s", body)
	}
}
