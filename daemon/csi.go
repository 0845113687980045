package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/csi"
)

// serveCSI starts the Kubernetes CSI plugin on cfg.CSISocket (if set). Its
// records live in the node's FrontendRecords. It returns a func that
// stops it gracefully, to be called before the node closes.
func serveCSI(cfg Config, node *dotmesh.Node, log *slog.Logger) (func(), error) {
	if cfg.CSISocket == "" {
		return func() {}, nil
	}
	p, err := csi.New(csi.Options{Node: node, NodeID: cfg.CSINodeID, Version: cfg.Version, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("starting the CSI plugin: %w", err)
	}
	ln, err := p.Listen(cfg.CSISocket)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			log.Warn("serving the CSI plugin", "err", err)
		}
	}, nil
}
