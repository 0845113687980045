package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/frontends/docker/dockerenv"
)

// DefaultEngine is the Docker engine API socket used unless DOCKER_HOST
// names another unix socket.
const DefaultEngine = dockerenv.DefaultEngine

// EngineFromEnv returns the engine socket the docker CLI would use:
// DOCKER_HOST when it is a unix:// address, else DefaultEngine.
func EngineFromEnv(getenv func(string) string) string { return dockerenv.EngineFromEnv(getenv) }

// engine is the little of the Docker engine API the plugin needs: which
// containers use a volume, and stopping and starting them.
type engine struct {
	socket string
	hc     *http.Client
}

func newEngine(socket string) *engine {
	if socket == "" {
		socket = DefaultEngine
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: 4,
	}
	return &engine{socket: socket, hc: &http.Client{Transport: tr}}
}

// container is one entry of GET /containers/json.
type container struct {
	ID     string   `json:"Id"`
	Names  []string `json:"Names"`
	State  string   `json:"State"`
	Mounts []struct {
		Type   string `json:"Type"`
		Name   string `json:"Name"`
		Driver string `json:"Driver"`
	} `json:"Mounts"`
}

// name is the container's name without Docker's leading slash.
func (c container) name() string {
	if len(c.Names) == 0 {
		return c.ID[:min(12, len(c.ID))]
	}
	return strings.TrimPrefix(c.Names[0], "/")
}

// uses reports whether the container mounts volume name of driver.
func (c container) uses(driver, name string) bool {
	for _, m := range c.Mounts {
		if m.Type == "volume" && m.Driver == driver && m.Name == name {
			return true
		}
	}
	return false
}

// containers lists containers (all, or only running ones), optionally
// only those that use a volume called volume.
func (e *engine) containers(ctx context.Context, all bool, volume string) ([]container, error) {
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	if volume != "" {
		f, _ := json.Marshal(map[string][]string{"volume": {volume}})
		q.Set("filters", string(f))
	}
	var out []container
	if err := e.call(ctx, http.MethodGet, "/containers/json?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// autoRemove tells whether a container was started with --rm, so that
// stopping it would make Docker delete it.
func (e *engine) autoRemove(ctx context.Context, id string) (bool, error) {
	var out struct {
		HostConfig struct {
			AutoRemove bool `json:"AutoRemove"`
		} `json:"HostConfig"`
	}
	if err := e.call(ctx, http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", &out); err != nil {
		return false, err
	}
	return out.HostConfig.AutoRemove, nil
}

// stop stops a container with its own stop timeout (docker run
// --stop-timeout), like `docker stop` does.
func (e *engine) stop(ctx context.Context, id string) error {
	return e.call(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/stop", nil)
}

func (e *engine) start(ctx context.Context, id string) error {
	return e.call(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/start", nil)
}

// call does one request; 304 (already stopped/started) counts as success.
func (e *engine) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return fmt.Errorf("Docker engine at %s: %w", e.socket, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("Docker engine at %s: %w", e.socket, err)
	}
	if resp.StatusCode == http.StatusNotModified {
		return nil
	}
	if resp.StatusCode/100 != 2 {
		var msg struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &msg) != nil || msg.Message == "" {
			msg.Message = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("Docker engine: %s %s: %s", method, strings.SplitN(path, "?", 2)[0], oneLine(msg.Message))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("Docker engine: decoding %s: %w", path, err)
		}
	}
	return nil
}

// reachable tells whether the engine answers within a short time; the
// plugin works without it, with fewer names to show.
func (e *engine) reachable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return e.call(ctx, http.MethodGet, "/_ping", nil) == nil
}
