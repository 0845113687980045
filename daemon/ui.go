package daemon

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/web"
)

// withUI serves the web UI under /ui/ beside the API (unless
// cfg.NoUI); every other path stays the API's.
func withUI(cfg Config, node *dotmesh.Node, api http.Handler, log *slog.Logger) (http.Handler, error) {
	if cfg.NoUI {
		return api, nil
	}
	ui, err := web.New(node, web.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("starting the web UI: %w", err)
	}
	return web.Mount(ui, api), nil
}
