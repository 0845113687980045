// Package dockerenv holds what the dm command line shares with the
// Docker volume plugin (package docker) without linking it: where the
// plugin listens, which engine socket the node talks to, and how a
// mount's user is named. The plugin serves and calls HTTP (net/http); the
// light dm, which links this package, must not link net/http
// (cmd/dm/light_test.go).
package dockerenv

import (
	"path/filepath"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// DefaultSocket is where Docker looks for the "dm" volume driver.
const DefaultSocket = "/run/docker/plugins/dm.sock"

// DefaultEngine is the Docker engine API socket used unless DOCKER_HOST
// names another unix socket.
const DefaultEngine = "/var/run/docker.sock"

// Consumer is the dotmesh.Mount consumer of the Docker plugin's mounts.
const Consumer = "docker"

// EngineFromEnv returns the engine socket the docker CLI would use:
// DOCKER_HOST when it is a unix:// address, else DefaultEngine.
func EngineFromEnv(getenv func(string) string) string {
	if h := getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		return strings.TrimPrefix(h, "unix://")
	}
	return DefaultEngine
}

// Describe names a mount's user for people: the container name when
// Docker told, else the consumer and a short mount ID.
func Describe(m dotmesh.Mount) string {
	if m.Name != "" {
		return m.Name
	}
	id := m.ID
	if m.Consumer == Consumer && len(id) > 12 {
		id = id[:12]
	}
	return m.Consumer + ":" + filepath.Base(id)
}
