package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/metrics"
)

// checkMetricsListen refuses a --metrics-listen address that is not
// HOST:PORT, or that lies beyond loopback without MetricsListenPublic:
// the metrics there need no key, and name dots' activity and the
// node's build.
func checkMetricsListen(cfg Config) error {
	if cfg.MetricsListen == "" {
		if cfg.MetricsListenPublic {
			return fmt.Errorf("%w: --metrics-listen-public needs --metrics-listen ADDR", dotmesh.ErrInvalidArgument)
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(cfg.MetricsListen); err != nil {
		return fmt.Errorf("%w: metrics listen address %q must be HOST:PORT", dotmesh.ErrInvalidArgument, cfg.MetricsListen)
	}
	if !cfg.MetricsListenPublic && !api.LoopbackAddr(cfg.MetricsListen) {
		return fmt.Errorf("%w: --metrics-listen %s is beyond this machine, where anyone could read the metrics without a key; listen on loopback (127.0.0.1:PORT), scrape /metrics on the API port with an admin key, or pass --metrics-listen-public to accept that", dotmesh.ErrInvalidArgument, cfg.MetricsListen)
	}
	return nil
}

// serveMetrics serves m alone at /metrics on cfg.MetricsListen, without
// authentication, until the returned stop is called. Nothing to do
// without an address.
func serveMetrics(cfg Config, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	if cfg.MetricsListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("%w: listening on %s for metrics: %w (choose another address with --metrics-listen)", dotmesh.ErrUnavailable, cfg.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if !api.LoopbackAddr(cfg.MetricsListen) {
		log.Warn("--metrics-listen-public: the metrics are served beyond this machine without a key", "addr", ln.Addr().String())
	}
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	if cfg.MetricsReady != nil {
		cfg.MetricsReady(ln.Addr().String())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("serving metrics", "err", err)
		}
	}, nil
}
