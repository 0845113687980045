package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/docker"
)

// serveDocker starts the Docker volume plugin on cfg.DockerSocket and
// registers its MountController, so resets can restart containers. It
// returns a func that stops it and removes the socket.
//
// At the default socket path, a failure (no root for /run/docker, or
// another node serving it) is logged and the node runs without the
// plugin: most nodes are not Docker hosts. A path given explicitly must
// work.
func serveDocker(cfg Config, node *dotmesh.Node, dataDir string, log *slog.Logger) (func(), error) {
	if cfg.DockerSocket == "" {
		return func() {}, nil
	}
	srv, err := docker.Listen(cfg.DockerSocket)
	if err != nil {
		if cfg.DockerSocket == docker.DefaultSocket {
			log.Warn("not serving the Docker volume plugin", "socket", cfg.DockerSocket, "err", err)
			return func() {}, nil
		}
		return nil, err
	}
	p, err := docker.New(node, docker.Options{
		Driver:          docker.DriverName(cfg.DockerSocket),
		Engine:          cfg.DockerEngine,
		LegacyStateFile: filepath.Join(dataDir, "docker-volumes.json"),
		BackendAliases:  aliases,
		Logger:          log,
	})
	if err != nil {
		srv.Shutdown(context.Background())
		return nil, fmt.Errorf("starting the Docker volume plugin: %w", err)
	}
	node.Mounts().RegisterController(p.Controller())
	started := time.Now()
	srv.Serve(p, log)
	rctx, stopReconcile := context.WithTimeout(context.Background(), time.Minute)
	reconciled := make(chan struct{})
	go func() {
		defer close(reconciled)
		if err := p.Reconcile(rctx, started); err != nil {
			log.Info("not checking for Docker mounts left from before the start", "err", err)
		}
	}()
	log.Info("serving the Docker volume plugin", "socket", srv.Path(), "driver", p.Driver())
	return func() {
		stopReconcile() // before the node closes
		<-reconciled
		ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("stopping the Docker volume plugin", "err", err)
		}
	}, nil
}
