package metrics

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var (
	descDots     = prometheus.NewDesc("dotmesh_dots", "Dots in the registry.", nil, nil)
	descBranches = prometheus.NewDesc("dotmesh_branches", "Branches of all dots in the registry.", nil, nil)
	descObjects  = prometheus.NewDesc("dotmesh_store_objects", "Objects a backend stores: the files backend's chunks, zfs and btrfs commit snapshots.", []string{"backend"}, nil)
	descStored   = prometheus.NewDesc("dotmesh_store_bytes", "Bytes a backend's store takes on disk.", []string{"backend"}, nil)
	descLogical  = prometheus.NewDesc("dotmesh_store_logical_bytes", "File bytes of every commit a backend stores: what restoring each would write.", []string{"backend"}, nil)
	descDedup    = prometheus.NewDesc("dotmesh_store_dedup_ratio", "Logical bytes over stored bytes of a backend (deduplication, compression and blocks shared between snapshots).", []string{"backend"}, nil)
	descLacking  = prometheus.NewDesc("dotmesh_replication_lacking_commits", "Commits a cluster node does not hold yet, over all dots.", []string{"node"}, nil)
	descLag      = prometheus.NewDesc("dotmesh_replication_lag_seconds", "Age of the oldest commit a cluster node does not hold yet (0 when it holds all).", []string{"node"}, nil)
)

// snapshots reads the node's state at each scrape.
type snapshots struct {
	node    *dotmesh.Node
	log     *slog.Logger
	timeout time.Duration
}

func (s *snapshots) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDots, descBranches, descObjects, descStored, descLogical, descDedup, descLacking, descLag} {
		ch <- d
	}
}

// Collect reads what it can; a read that fails is logged and its
// metrics are left out of this scrape rather than failing all of it.
func (s *snapshots) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := s.ctx()
	defer cancel()
	names, err := s.node.DotNames(ctx)
	if err != nil {
		s.log.Warn("metrics: cannot list the dots", "err", err)
	} else {
		branches := 0
		for _, name := range names {
			bs, err := s.node.Branches(ctx, name)
			if err != nil {
				s.log.Warn("metrics: cannot list the branches of a dot", "dot", name.String(), "err", err)
				continue
			}
			branches += len(bs)
		}
		ch <- prometheus.MustNewConstMetric(descDots, prometheus.GaugeValue, float64(len(names)))
		ch <- prometheus.MustNewConstMetric(descBranches, prometheus.GaugeValue, float64(branches))
		if s.node.Cluster().NodeID() != "" {
			s.replication(ctx, ch, names)
		}
	}
	for _, name := range s.node.BackendNames() {
		be, _ := s.node.Backend(name)
		ss, ok := be.(dotmesh.StoreStatter)
		if !ok {
			continue
		}
		st, err := ss.StoreStats(ctx)
		if errors.Is(err, dotmesh.ErrInUse) {
			continue // a gc runs: the next scrape counts
		}
		if err != nil {
			s.log.Warn("metrics: cannot read what a backend's store holds", "backend", name, "err", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(descObjects, prometheus.GaugeValue, float64(st.Objects), name)
		ch <- prometheus.MustNewConstMetric(descStored, prometheus.GaugeValue, float64(st.StoredBytes), name)
		ch <- prometheus.MustNewConstMetric(descLogical, prometheus.GaugeValue, float64(st.LogicalBytes), name)
		ratio := 1.0 // an empty store saves nothing
		if st.StoredBytes > 0 {
			ratio = float64(st.LogicalBytes) / float64(st.StoredBytes)
		}
		ch <- prometheus.MustNewConstMetric(descDedup, prometheus.GaugeValue, ratio, name)
	}
}

// replication sums, per cluster node, the commits it lacks over all
// dots, and the age of the oldest of them.
func (s *snapshots) replication(ctx context.Context, ch chan<- prometheus.Metric, names []dotmesh.DotName) {
	lacking := map[string]int{}
	oldest := map[string]time.Time{}
	now := time.Now()
	for _, name := range names {
		reps, err := s.node.Cluster().Replication(ctx, name)
		if err != nil {
			s.log.Warn("metrics: cannot read a dot's replication", "dot", name.String(), "err", err)
			continue
		}
		for _, r := range reps {
			lacking[r.Node] += len(r.Lacks)
			if len(r.Lacks) == 0 {
				continue
			}
			// Lacks is oldest first: its first commit is the lag.
			c, err := s.node.ResolveRef(ctx, name, "", string(r.Lacks[0]))
			if err != nil {
				s.log.Warn("metrics: cannot read a commit a node lacks", "dot", name.String(), "commit", r.Lacks[0], "err", err)
				continue
			}
			if t, ok := oldest[r.Node]; !ok || c.Time.Before(t) {
				oldest[r.Node] = c.Time
			}
		}
	}
	nodes := make([]string, 0, len(lacking))
	for n := range lacking {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		lag := 0.0
		if t, ok := oldest[n]; ok {
			lag = max(now.Sub(t).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descLacking, prometheus.GaugeValue, float64(lacking[n]), n)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, lag, n)
	}
}
