package dump

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Sources: a subdot of a branch can be bound to a live database. The
// binding lives in branches/<dot>/<branch>/sources.json (mode 0600: URLs
// may hold passwords), is local to this node and is not inherited by new
// branches (they get the dump files as plain files).
//
// A commit first dumps every source into a temporary file, checking each
// tool's exit status and output; only when all succeeded are the dumps
// renamed into tree/<subdot>/<kind file>, and the usual snapshot stores
// them with the rest of the tree, in the same manifest. Rollback restores
// the tree, then loads each source's dump file into its database.
// Dirtiness (Usage) dumps each database and compares the bytes with the
// dump file in the tree: exact, but as costly as a dump.

var _ dotmesh.SourceManager = (*Backend)(nil)

type sourceConfig struct {
	Subdot     string `json:"subdot"`
	Kind       string `json:"kind"`
	URL        string `json:"url"`
	InitSchema string `json:"init_schema,omitempty"`
	State      string `json:"state"`
}

const (
	stateActive    = "active"
	stateGarbage   = "garbage"
	stateCollected = "collected"
)

func (b *Backend) sourcesPath(br dotmesh.BranchRef) string {
	return filepath.Join(b.branchDir(br), "sources.json")
}

func (b *Backend) readSources(br dotmesh.BranchRef) ([]sourceConfig, error) {
	data, err := os.ReadFile(b.sourcesPath(br))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sources of %s: %w", br, err)
	}
	var out []sourceConfig
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%w: sources of %s: %v", dotmesh.ErrCorrupt, br, err)
	}
	return out, nil
}

// writeSources replaces the config atomically, never readable by others.
func (b *Backend) writeSources(br dotmesh.BranchRef, srcs []sourceConfig) error {
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].Subdot < srcs[j].Subdot })
	data, err := json.MarshalIndent(srcs, "", "  ")
	if err != nil {
		return err
	}
	dir := b.branchDir(br)
	tmp := filepath.Join(dir, tmpPrefix+"sources-"+randomSuffix())
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write sources of %s: %w", br, err)
	}
	if err := os.Rename(tmp, b.sourcesPath(br)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write sources of %s: %w", br, err)
	}
	return syncDirectory(dir)
}

// AddSource implements dotmesh.SourceManager.
func (b *Backend) AddSource(ctx context.Context, br dotmesh.BranchRef, subdot string, spec dotmesh.SourceSpec) error {
	if err := br.Validate(); err != nil {
		return err
	}
	if err := dotmesh.ValidateSubdot(subdot); err != nil || subdot == dotmesh.RootSubdot {
		return fmt.Errorf("%w: subdot %q cannot be a source", dotmesh.ErrInvalidName, subdot)
	}
	if _, err := source.Parse(spec.Kind, spec.URL); err != nil {
		return err
	}
	if _, err := b.SubdotPath(ctx, br, subdot); err != nil {
		return err
	}
	defer b.lockBranch(br)()
	srcs, err := b.readSources(br)
	if err != nil {
		return err
	}
	for _, s := range srcs {
		if s.Subdot == subdot {
			return fmt.Errorf("%w: subdot %s of %s is bound to a %s source already; `dm source rm` it first", dotmesh.ErrAlreadyExists, subdot, br, s.Kind)
		}
	}
	srcs = append(srcs, sourceConfig{Subdot: subdot, Kind: spec.Kind, URL: spec.URL, InitSchema: spec.InitSchema, State: stateActive})
	return b.writeSources(br, srcs)
}

// RemoveSource implements dotmesh.SourceManager: the binding goes; the
// database and the dump file in the tree stay.
func (b *Backend) RemoveSource(ctx context.Context, br dotmesh.BranchRef, subdot string) error {
	if err := br.Validate(); err != nil {
		return err
	}
	defer b.lockBranch(br)()
	srcs, err := b.readSources(br)
	if err != nil {
		return err
	}
	for i, s := range srcs {
		if s.Subdot == subdot {
			return b.writeSources(br, append(srcs[:i], srcs[i+1:]...))
		}
	}
	return fmt.Errorf("%w: subdot %s of %s has no source", dotmesh.ErrNotFound, subdot, br)
}

// Sources implements dotmesh.SourceManager, with passwords redacted.
func (b *Backend) Sources(ctx context.Context, br dotmesh.BranchRef) ([]dotmesh.Source, error) {
	if err := br.Validate(); err != nil {
		return nil, err
	}
	if err := b.needTree(br); err != nil {
		return nil, err
	}
	srcs, err := b.readSources(br)
	if err != nil {
		return nil, err
	}
	out := make([]dotmesh.Source, 0, len(srcs))
	for _, s := range srcs {
		out = append(out, dotmesh.Source{Subdot: s.Subdot, Kind: s.Kind, URL: source.Redact(s.URL), State: s.State, InitSchema: s.InitSchema != ""})
	}
	return out, nil
}

// SourceLifecycle implements dotmesh.SourceManager.
func (b *Backend) SourceLifecycle(ctx context.Context, br dotmesh.BranchRef, subdot, action string) error {
	if err := br.Validate(); err != nil {
		return err
	}
	defer b.lockBranch(br)()
	srcs, err := b.readSources(br)
	if err != nil {
		return err
	}
	i := slicesIndex(srcs, subdot)
	if i < 0 {
		return fmt.Errorf("%w: subdot %s of %s has no source", dotmesh.ErrNotFound, subdot, br)
	}
	s := &srcs[i]
	drv, err := driverOf(s)
	if err != nil {
		return err
	}
	switch action {
	case dotmesh.SourceActivate:
		if drv != nil {
			ok, err := drv.Exists(ctx)
			if err != nil {
				return sourceErr(s, err)
			}
			if !ok {
				if err := drv.Create(ctx, s.InitSchema); err != nil {
					return sourceErr(s, err)
				}
			}
		}
		s.State = stateActive
	case dotmesh.SourceDeactivate:
		s.State = stateGarbage
	case dotmesh.SourceCollectGarbage:
		if s.State != stateGarbage {
			b.log.Info("collect-garbage: source not marked as garbage; nothing dropped", "branch", br.String(), "subdot", subdot)
			return nil
		}
		if drv != nil {
			if err := drv.Drop(ctx); err != nil {
				return sourceErr(s, err)
			}
		}
		s.State = stateCollected
	default:
		return fmt.Errorf("%w: unknown source action %q", dotmesh.ErrInvalidArgument, action)
	}
	return b.writeSources(br, srcs)
}

func slicesIndex(srcs []sourceConfig, subdot string) int {
	for i := range srcs {
		if srcs[i].Subdot == subdot {
			return i
		}
	}
	return -1
}

func driverOf(s *sourceConfig) (source.Driver, error) {
	c, err := source.Parse(s.Kind, s.URL)
	if err != nil {
		return nil, err
	}
	if s.Kind == source.Files {
		return nil, nil
	}
	return source.Open(c)
}

func sourceErr(s *sourceConfig, err error) error {
	return fmt.Errorf("source %s (%s %s): %w", s.Subdot, s.Kind, source.Redact(s.URL), err)
}

// liveSources returns the sources with a database to dump or restore.
func (b *Backend) liveSources(br dotmesh.BranchRef) ([]sourceConfig, []source.Driver, error) {
	srcs, err := b.readSources(br)
	if err != nil {
		return nil, nil, err
	}
	var live []sourceConfig
	var drvs []source.Driver
	for i := range srcs {
		s := &srcs[i]
		if s.State == stateCollected {
			continue
		}
		drv, err := driverOf(s)
		if err != nil {
			return nil, nil, sourceErr(s, err)
		}
		if drv != nil {
			live = append(live, *s)
			drvs = append(drvs, drv)
		}
	}
	return live, drvs, nil
}

// dumpToTemp dumps one source into a temporary file in the branch
// directory (outside the tree), returning its path; removed on error.
func (b *Backend) dumpToTemp(ctx context.Context, br dotmesh.BranchRef, s *sourceConfig, drv source.Driver) (string, source.Info, error) {
	f, err := os.CreateTemp(b.branchDir(br), tmpPrefix+"dump-*")
	if err != nil {
		return "", source.Info{}, err
	}
	// No fsync: the tree's copy is a cache; the commit syncs its chunks.
	info, err := drv.Dump(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", info, sourceErr(s, err)
	}
	return f.Name(), info, nil
}

// dumpSources dumps every live source of br, all before any reaches the
// tree, so a failed dump leaves the tree as it was. It returns the facts
// to record with the commit.
func (b *Backend) dumpSources(ctx context.Context, br dotmesh.BranchRef) (map[string]string, error) {
	srcs, drvs, err := b.liveSources(br)
	if err != nil || len(srcs) == 0 {
		return nil, err
	}
	facts := map[string]string{}
	temps := make([]string, len(srcs))
	defer func() {
		for _, t := range temps {
			if t != "" {
				os.Remove(t)
			}
		}
	}()
	for i := range srcs {
		start := time.Now()
		tmp, info, err := b.dumpToTemp(ctx, br, &srcs[i], drvs[i])
		if err != nil {
			return nil, fmt.Errorf("dump failed, nothing committed: %w", err)
		}
		temps[i] = tmp
		st, _ := os.Stat(tmp)
		p := "source." + srcs[i].Subdot + "."
		facts[p+"kind"] = srcs[i].Kind
		facts[p+"tool"] = info.Tool
		facts[p+"server"] = info.Server
		facts[p+"snapshot_time"] = info.Time.Format(time.RFC3339Nano)
		facts[p+"dump_bytes"] = strconv.FormatInt(st.Size(), 10)
		facts[p+"dump_ms"] = strconv.FormatInt(time.Since(start).Milliseconds(), 10)
	}
	for i := range srcs {
		dst := filepath.Join(b.treeDir(br), srcs[i].Subdot, drvs[i].FileName())
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		// An identical dump keeps the old file, whose stat data the change
		// cache vouches for: the snapshot then need not read it again.
		if same, _, err := sameFile(temps[i], dst); err == nil && same {
			continue
		}
		if err := os.Rename(temps[i], dst); err != nil {
			return nil, fmt.Errorf("placing the dump of source %s: %w", srcs[i].Subdot, err)
		}
		temps[i] = ""
	}
	return facts, nil
}

// restoreSources loads each live source's dump file (as the tree now
// holds it) into its database. A source without a dump in the tree (the
// commit predates it) is left alone.
func (b *Backend) restoreSources(ctx context.Context, br dotmesh.BranchRef) error {
	srcs, drvs, err := b.liveSources(br)
	if err != nil {
		return err
	}
	for i := range srcs {
		file := filepath.Join(b.treeDir(br), srcs[i].Subdot, drvs[i].FileName())
		if _, err := os.Stat(file); err != nil {
			b.log.Warn("commit has no dump of this source; database left as it is", "branch", br.String(), "subdot", srcs[i].Subdot)
			continue
		}
		if err := drvs[i].Restore(ctx, file); err != nil {
			return sourceErr(&srcs[i], err)
		}
	}
	return nil
}

// sourcesUsage adds the sources' changes to u: a database is dirty when a
// fresh dump differs from the dump file in the tree (which equals head's
// unless the files part already counts it). Skipped once u is dirty.
func (b *Backend) sourcesUsage(ctx context.Context, br dotmesh.BranchRef, u dotmesh.Usage) (dotmesh.Usage, error) {
	if u.Dirty {
		return u, nil
	}
	srcs, drvs, err := b.liveSources(br)
	if err != nil {
		return u, err
	}
	for i := range srcs {
		tmp, _, err := b.dumpToTemp(ctx, br, &srcs[i], drvs[i])
		if err != nil {
			return u, fmt.Errorf("checking for changes: %w", err)
		}
		same, size, err := sameFile(tmp, filepath.Join(b.treeDir(br), srcs[i].Subdot, drvs[i].FileName()))
		os.Remove(tmp)
		if err != nil {
			return u, err
		}
		if !same {
			u.Dirty = true
			u.DirtyBytes += size
		}
	}
	return u, nil
}

// sameFile compares two files' bytes; a missing b differs. It returns a's size.
func sameFile(a, b string) (bool, int64, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, 0, err
	}
	defer fa.Close()
	sa, _ := fa.Stat()
	fb, err := os.Open(b)
	if errors.Is(err, fs.ErrNotExist) {
		return false, sa.Size(), nil
	}
	if err != nil {
		return false, 0, err
	}
	defer fb.Close()
	if sb, _ := fb.Stat(); sb.Size() != sa.Size() {
		return false, sa.Size(), nil
	}
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, sa.Size(), nil
		}
		if ea != nil || eb != nil {
			return ea != nil && eb != nil, sa.Size(), nil
		}
	}
}
