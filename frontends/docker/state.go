package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// RecordNamespace is the node's FrontendRecords namespace of the plugin's
// records, one per Docker volume name.
const RecordNamespace = "docker"

// created is what the plugin remembers of a volume Docker created: the
// options that matter after Create (Remove's delete-on-remove) and the
// name, so `docker volume ls` lists it.
type created struct {
	Created        time.Time `json:"created"`
	DeleteOnRemove bool      `json:"delete_on_remove,omitempty"`
}

// state is the plugin's own small records, kept in the node's registry
// (FrontendRecords): Docker's view of dots, shared by a cluster's nodes.
type state struct {
	recs *dotmesh.FrontendRecords
}

// decodeCreated reads one stored record.
func decodeCreated(name string, b []byte) (created, error) {
	var c created
	if err := json.Unmarshal(b, &c); err != nil {
		return created{}, fmt.Errorf("%w: the Docker record of volume %q: %v", dotmesh.ErrCorrupt, truncate(name), oneLine(err.Error()))
	}
	return c, nil
}

func (s *state) get(ctx context.Context, name string) (created, bool, error) {
	b, err := s.recs.Get(ctx, name)
	if errors.Is(err, dotmesh.ErrNotFound) {
		return created{}, false, nil
	} else if err != nil {
		return created{}, false, err
	}
	c, err := decodeCreated(name, b)
	return c, err == nil, err
}

// names lists the recorded volume names, sorted.
func (s *state) names(ctx context.Context) ([]string, error) {
	kvs, err := s.recs.List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out, nil
}

// put records (c != nil) or forgets (c == nil) a volume.
func (s *state) put(ctx context.Context, name string, c *created) error {
	if c == nil {
		return s.recs.Delete(ctx, name)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.recs.Put(ctx, name, b)
}

// parseLegacyState reads the JSON file an older version kept the records
// in: volume name -> created.
func parseLegacyState(b []byte) (map[string]created, error) {
	vols := make(map[string]created)
	if err := json.Unmarshal(b, &vols); err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	return vols, nil
}

// importLegacy moves the records of the JSON file an older version kept
// into the node's records, once: the file is renamed to path+".imported"
// afterwards. A record already in the registry wins; a name that is not a
// volume name (no request could use it) is left out, with a warning.
func (s *state) importLegacy(ctx context.Context, path string, log *slog.Logger) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("reading the Docker volume state: %w", err)
	}
	vols, err := parseLegacyState(b)
	if err != nil {
		return fmt.Errorf("reading the Docker volume state %s: %w", path, err)
	}
	for name, c := range vols {
		if _, err := dotmesh.ParseVolumeName(name); err != nil {
			log.Warn("leaving out a Docker volume record with a bad name", "file", path, "err", err)
			continue
		}
		if _, had, err := s.get(ctx, name); err != nil {
			return err
		} else if had {
			continue
		}
		if err := s.put(ctx, name, &c); err != nil {
			return fmt.Errorf("importing the Docker volume state %s: %w", path, err)
		}
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		return fmt.Errorf("setting the imported Docker volume state aside: %w", err)
	}
	log.Info("imported the Docker volume records of an older version into the registry", "file", path, "volumes", len(vols), "renamed", path+".imported")
	return nil
}
