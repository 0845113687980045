package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// created is what the plugin remembers of a volume Docker created: the
// options that matter after Create (Remove's delete-on-remove) and the
// name, so `docker volume ls` lists it.
type created struct {
	Created        time.Time `json:"created"`
	DeleteOnRemove bool      `json:"delete_on_remove,omitempty"`
}

// state is the plugin's own small record, a JSON file next to the node's
// registry. It is not part of the registry: it is Docker's view of dots,
// and losing it only loses the delete-on-remove wishes.
type state struct {
	path string

	mu   sync.Mutex
	vols map[string]created
}

func loadState(path string) (*state, error) {
	s := &state{path: path, vols: make(map[string]created)}
	if path == "" {
		return s, nil // in memory only
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading the Docker volume state: %w", err)
	}
	if err := json.Unmarshal(b, &s.vols); err != nil {
		return nil, fmt.Errorf("reading the Docker volume state %s: %w", path, err)
	}
	return s, nil
}

func (s *state) get(name string) (created, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.vols[name]
	return c, ok
}

func (s *state) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.vols))
	for n := range s.vols {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// put records (c != nil) or forgets (c == nil) a volume, and saves.
func (s *state) put(name string, c *created) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.vols[name]
	if c == nil {
		delete(s.vols, name)
	} else {
		s.vols[name] = *c
	}
	if err := s.save(); err != nil {
		if had {
			s.vols[name] = old
		} else {
			delete(s.vols, name)
		}
		return err
	}
	return nil
}

// save writes the file atomically: a crash leaves the old or the new one.
func (s *state) save() error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s.vols, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".docker-volumes-*")
	if err != nil {
		return fmt.Errorf("saving the Docker volume state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("saving the Docker volume state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("saving the Docker volume state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving the Docker volume state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("saving the Docker volume state: %w", err)
	}
	return nil
}
