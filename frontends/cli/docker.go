package cli

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/frontends/docker/dockerenv"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// dockerFlags are the Docker volume plugin flags of `dm serve` and
// `dm cluster init`.
type dockerFlags struct {
	socket string
}

func (d *dockerFlags) add(f *pflag.FlagSet) {
	f.StringVar(&d.socket, "docker-socket", dockerenv.DefaultSocket,
		"serve the Docker volume plugin on `PATH` (its base name without .sock is the --volume-driver name); \"\" disables it")
}

// apply sets the daemon's Docker fields. The engine is the one the docker
// CLI would use (DOCKER_HOST): it names containers in `dm list` and
// restarts them for `dm reset --restart`.
func (d *dockerFlags) apply(cfg *node.Config, getenv func(string) string) {
	cfg.DockerSocket = d.socket
	cfg.DockerEngine = dockerenv.EngineFromEnv(getenv)
}

// args passes the flags on to `dm serve`.
func (d *dockerFlags) args() []string {
	return []string{"--docker-socket", d.socket}
}

// usedBy lists who uses a dot, for people: container names where Docker
// told, else consumer:mount-id.
func usedBy(ms []dotmesh.Mount) string {
	var out []string
	for _, m := range ms {
		out = append(out, dockerenv.Describe(m))
	}
	return strings.Join(out, ", ")
}
