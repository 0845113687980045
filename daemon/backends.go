package daemon

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// opener opens one backend kind with its storage under dataDir.
type opener func(dataDir string, log *slog.Logger) (dotmesh.StorageBackend, error)

// backends are the kinds `dm serve --backend` accepts, by canonical name.
var backends = map[string]opener{
	"dump": func(dataDir string, log *slog.Logger) (dotmesh.StorageBackend, error) {
		return dump.Open(filepath.Join(dataDir, "dump"), dump.Options{Logger: log})
	},
}

// aliases are other names users may give: "files" is what the dump backend
// is for most people, a plain directory of files.
var aliases = map[string]string{"files": "dump"}

// DefaultBackend is the backend of new dots unless Config.Backend says.
const DefaultBackend = "files"

// BackendNames lists the names Config.Backend accepts, sorted.
func BackendNames() []string {
	var names []string
	for n := range backends {
		names = append(names, n)
	}
	for a := range aliases {
		names = append(names, a)
	}
	sort.Strings(names)
	return names
}

// canonicalBackend resolves an alias and checks the name.
func canonicalBackend(name string) (string, opener, error) {
	if name == "" {
		name = DefaultBackend
	}
	if c, ok := aliases[name]; ok {
		name = c
	}
	open, ok := backends[name]
	if !ok {
		return "", nil, fmt.Errorf("%w: unknown backend %q; choose one of %s", dotmesh.ErrInvalidArgument, name, strings.Join(BackendNames(), ", "))
	}
	return name, open, nil
}
