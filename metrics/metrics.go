// Package metrics exposes a dotmesh node's Prometheus metrics.
//
// A Metrics is two things: the dotmesh.Observer the engine tells of
// every operation it runs (give it as dotmesh.Options.Observer), and,
// once Watch has been given the Node, a collector that reads snapshots
// from the Node's read APIs when Prometheus scrapes (dots, branches, what
// the backends' stores hold, replication in a cluster). Handler serves
// them in the Prometheus text format; the daemon mounts it on the API
// port behind the admin role, or alone on --metrics-listen.
//
// # Metrics
//
// Counted as the engine works:
//
//	dotmesh_operations_total{op,result}          operations by op (commit, reset, checkout, push, pull,
//	                                             clone, receive, gc, verify) and result (ok, error)
//	dotmesh_operation_duration_seconds{op}       their latency (histogram)
//	dotmesh_source_dumps_total{kind}             database dumps a commit made, by source kind
//	dotmesh_source_dump_duration_seconds{kind}   their latency (histogram)
//	dotmesh_source_dump_bytes_total{kind}        the bytes they dumped
//	dotmesh_commit_added_bytes_total             bytes commits added to storage (where the backend says)
//	dotmesh_transfer_bytes_total{direction}      commit stream bytes sent and received
//	dotmesh_transfers_in_progress{op}            push, pull, clone and receive running now
//	dotmesh_gc_freed_bytes_total                 bytes garbage collections freed (dry runs excluded)
//	dotmesh_gc_removed_commits_total             commits they removed
//
// Read at each scrape:
//
//	dotmesh_dots, dotmesh_branches               dots and branches in the registry
//	dotmesh_store_objects{backend}               objects a backend stores (dump: chunks; zfs, btrfs: commit snapshots)
//	dotmesh_store_bytes{backend}                 bytes they take on disk
//	dotmesh_store_logical_bytes{backend}         file bytes of every stored commit
//	dotmesh_store_dedup_ratio{backend}           logical / stored bytes (deduplication, compression, shared blocks)
//	dotmesh_replication_lacking_commits{node}    commits a cluster node does not hold yet, all dots
//	dotmesh_replication_lag_seconds{node}        age of the oldest of them (0 when none)
//	dotmesh_build_info{version,goversion}        1
//
// and the Go runtime's and the process's (go_*, process_*).
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Options configure New.
type Options struct {
	// Version is reported by dotmesh_build_info.
	Version string
	// Logger receives what a scrape could not read; nil means
	// slog.Default().
	Logger *slog.Logger
	// ScrapeTimeout bounds the snapshot reads of one scrape; 0 means 10s.
	ScrapeTimeout time.Duration
}

// Metrics is a node's metrics: a dotmesh.Observer and a Prometheus
// registry. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	ops        *prometheus.CounterVec
	opSeconds  *prometheus.HistogramVec
	dumps      *prometheus.CounterVec
	dumpSecs   *prometheus.HistogramVec
	dumpBytes  *prometheus.CounterVec
	added      prometheus.Counter
	moved      *prometheus.CounterVec
	inProgress *prometheus.GaugeVec
	gcFreed    prometheus.Counter
	gcRemoved  prometheus.Counter
	timeout    time.Duration
}

var _ dotmesh.Observer = (*Metrics)(nil)

// transferOps are the operations dotmesh_transfers_in_progress counts.
var transferOps = map[string]bool{dotmesh.OpPush: true, dotmesh.OpPull: true, dotmesh.OpClone: true, dotmesh.OpReceive: true}

// New returns the metrics of one node, with every series of the known
// operations present from the start (at 0), so that rate() and absent()
// work before the first operation.
func New(opts Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), log: opts.Logger, timeout: opts.ScrapeTimeout}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.timeout <= 0 {
		m.timeout = 10 * time.Second
	}
	// From 1 ms to about 17 minutes: a tiny commit to a large push.
	buckets := prometheus.ExponentialBuckets(0.001, 4, 11)
	m.ops = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dotmesh_operations_total", Help: "Operations the engine ran, by operation and result (ok or error)."}, []string{"op", "result"})
	m.opSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dotmesh_operation_duration_seconds", Help: "How long operations took, by operation.", Buckets: buckets}, []string{"op"})
	m.dumps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dotmesh_source_dumps_total", Help: "Database dumps commits made, by source kind."}, []string{"kind"})
	m.dumpSecs = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dotmesh_source_dump_duration_seconds", Help: "How long database dumps took, by source kind.", Buckets: buckets}, []string{"kind"})
	m.dumpBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dotmesh_source_dump_bytes_total", Help: "Bytes database dumps wrote, by source kind."}, []string{"kind"})
	m.added = prometheus.NewCounter(prometheus.CounterOpts{Name: "dotmesh_commit_added_bytes_total", Help: "Bytes commits added to storage, where the backend reports it."})
	m.moved = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dotmesh_transfer_bytes_total", Help: "Commit stream bytes this node sent or received."}, []string{"direction"})
	m.inProgress = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dotmesh_transfers_in_progress", Help: "Transfers running now: pushes, pulls and clones this node runs, and commit streams it receives."}, []string{"op"})
	m.gcFreed = prometheus.NewCounter(prometheus.CounterOpts{Name: "dotmesh_gc_freed_bytes_total", Help: "Bytes garbage collections freed (dry runs excluded)."})
	m.gcRemoved = prometheus.NewCounter(prometheus.CounterOpts{Name: "dotmesh_gc_removed_commits_total", Help: "Commits garbage collections removed (dry runs excluded)."})
	for _, op := range []string{dotmesh.OpCommit, dotmesh.OpReset, dotmesh.OpCheckout, dotmesh.OpPush, dotmesh.OpPull, dotmesh.OpClone, dotmesh.OpReceive, dotmesh.OpGC, dotmesh.OpVerify} {
		m.ops.WithLabelValues(op, "ok")
		m.ops.WithLabelValues(op, "error")
		m.opSeconds.WithLabelValues(op)
		if transferOps[op] {
			m.inProgress.WithLabelValues(op)
		}
	}
	m.moved.WithLabelValues(string(dotmesh.DirSent))
	m.moved.WithLabelValues(string(dotmesh.DirReceived))
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "dotmesh_build_info", Help: "The running dm: version and Go version (always 1).",
		ConstLabels: prometheus.Labels{"version": opts.Version, "goversion": runtime.Version()}})
	build.Set(1)
	m.reg.MustRegister(m.ops, m.opSeconds, m.dumps, m.dumpSecs, m.dumpBytes, m.added, m.moved, m.inProgress, m.gcFreed, m.gcRemoved, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Started implements dotmesh.Observer.
func (m *Metrics) Started(op string) {
	if transferOps[op] {
		m.inProgress.WithLabelValues(op).Inc()
	}
}

// Done implements dotmesh.Observer.
func (m *Metrics) Done(ev dotmesh.OpEvent) {
	if transferOps[ev.Op] {
		m.inProgress.WithLabelValues(ev.Op).Dec()
	}
	result := "ok"
	if ev.Err != nil {
		result = "error"
	}
	m.ops.WithLabelValues(ev.Op, result).Inc()
	m.opSeconds.WithLabelValues(ev.Op).Observe(ev.Duration.Seconds())
	if ev.Err != nil {
		return
	}
	if ev.Op == dotmesh.OpCommit && ev.Commit != nil {
		m.commitFacts(ev.Commit.Info)
	}
	if ev.GC != nil && !ev.GC.DryRun {
		m.gcFreed.Add(float64(max(ev.GC.Stats.BytesRemoved, 0)))
		m.gcRemoved.Add(float64(len(ev.GC.Removed)))
	}
}

// commitFacts counts what a commit's backend reported: the bytes it
// added, and each database source it dumped. The dump backend reports a
// source as source.SUBDOT.kind, .dump_ms and .dump_bytes, and marks one
// whose database had not changed (no dump ran) with .unchanged.
func (m *Metrics) commitFacts(info dotmesh.CommitInfo) {
	if n, err := strconv.ParseInt(info[dotmesh.InfoAddedBytes], 10, 64); err == nil && n > 0 {
		m.added.Add(float64(n))
	}
	for k, kind := range info {
		sub, ok := strings.CutPrefix(k, "source.")
		if !ok || !strings.HasSuffix(sub, ".kind") || kind == "" {
			continue
		}
		p := strings.TrimSuffix(k, "kind")
		if info[p+"unchanged"] != "" {
			continue
		}
		m.dumps.WithLabelValues(kind).Inc()
		if ms, err := strconv.ParseInt(info[p+"dump_ms"], 10, 64); err == nil && ms >= 0 {
			m.dumpSecs.WithLabelValues(kind).Observe(float64(ms) / 1000)
		}
		if b, err := strconv.ParseInt(info[p+"dump_bytes"], 10, 64); err == nil && b > 0 {
			m.dumpBytes.WithLabelValues(kind).Add(float64(b))
		}
	}
}

// Moved implements dotmesh.Observer.
func (m *Metrics) Moved(dir dotmesh.Direction, n int64) {
	m.moved.WithLabelValues(string(dir)).Add(float64(n))
}

// Watch adds the snapshot metrics read from node at each scrape. Call it
// once, after dotmesh.NewNode.
func (m *Metrics) Watch(node *dotmesh.Node) {
	m.reg.MustRegister(&snapshots{node: node, log: m.log, timeout: m.timeout})
}

// Registry is where the metrics are registered, for a program that adds
// its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogErrors{m.log}, ErrorHandling: promhttp.ContinueOnError})
}

// slogErrors passes promhttp's errors to the logger.
type slogErrors struct{ log *slog.Logger }

func (s slogErrors) Println(v ...any) {
	s.log.Error("metrics: serving a scrape failed", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// ctx is a scrape's context.
func (s *snapshots) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}
