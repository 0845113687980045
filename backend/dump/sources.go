package dump

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

// Sources: a subdot of a branch can be bound to a live database. The
// binding lives in branches/<dot>/<branch>/sources.json (mode 0600: URLs
// may hold passwords), is local to this node and is not inherited by new
// branches (they get the dump files as plain files).
//
// A commit streams every source's dump into a temporary file and, while
// the tool runs, through the chunker into the commit's batch (see
// dumpSink), checking each tool's exit status and output; only when all
// succeeded are the dumps renamed into tree/<subdot>/<kind file>, and the
// snapshot puts them in the manifest with the rest of the tree, taking
// their chunks from the dump instead of reading the files again.
// Rollback restores the tree, then loads each source's dump file into its
// database.
//
// Dirtiness (Usage): a database that can fingerprint its state cheaply
// (PostgreSQL) is clean when its fingerprint is the one recorded when its
// dump last equalled head's (at a commit, or at an earlier Usage);
// otherwise Usage dumps it and compares the bytes with the dump file in
// the tree as they come, stopping at the first difference.

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
	if data, err = b.openFile("sources", data); err != nil {
		return nil, fmt.Errorf("sources of %s: %w", br, err)
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
	if err := os.WriteFile(tmp, b.sealFile("sources", data), 0o600); err != nil {
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
	if err := dotmesh.ValidateSubdot(subdot); err != nil || subdot == dotmesh.RootSubdot {
		return fmt.Errorf("%w: subdot %q cannot be a source", dotmesh.ErrInvalidName, subdot)
	}
	if _, err := source.Parse(spec.Kind, spec.URL); err != nil {
		return err
	}
	if _, err := b.SubdotPath(ctx, br, subdot); err != nil {
		return err
	}
	srcs, err := b.readSources(br)
	if err != nil {
		return err
	}
	for _, s := range srcs {
		if s.Subdot == subdot {
			return &dotmesh.SourceBoundError{Ref: br, Subdot: subdot, Kind: s.Kind}
		}
	}
	srcs = append(srcs, sourceConfig{Subdot: subdot, Kind: spec.Kind, URL: spec.URL, InitSchema: spec.InitSchema, State: stateActive})
	if err := b.writeSources(br, srcs); err != nil {
		return err
	}
	if drv, err := b.driverOf(&srcs[len(srcs)-1]); err == nil && drv != nil {
		b.warm.start(drv) // its first commit finds a connection ready
	}
	return nil
}

// RemoveSource implements dotmesh.SourceManager: the binding goes; the
// database and the dump file in the tree stay.
func (b *Backend) RemoveSource(ctx context.Context, br dotmesh.BranchRef, subdot string) error {
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
	srcs, err := b.readSources(br)
	if err != nil {
		return err
	}
	i := slicesIndex(srcs, subdot)
	if i < 0 {
		return fmt.Errorf("%w: subdot %s of %s has no source", dotmesh.ErrNotFound, subdot, br)
	}
	s := &srcs[i]
	drv, err := b.driverOf(s)
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
		if drv != nil {
			b.warm.start(drv)
		}
	case dotmesh.SourceDeactivate:
		s.State = stateGarbage
	case dotmesh.SourceCollectGarbage:
		if s.State != stateGarbage {
			b.log.InfoContext(ctx, "collect-garbage: source not marked as garbage; nothing dropped", "branch", br.String(), "subdot", subdot)
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

func (b *Backend) driverOf(s *sourceConfig) (source.Driver, error) {
	c, err := source.Parse(s.Kind, s.URL)
	if err != nil {
		return nil, err
	}
	if s.Kind == source.Files {
		return nil, nil
	}
	return source.OpenWith(c, b.warm.conns)
}

// warmIdle is how long a source's warm connection is kept unused: long
// enough to span a bind and its first commit, or a burst of commits;
// short enough that an idle node holds no server process for long (and
// a DROP DATABASE without FORCE is not refused for long).
const warmIdle = 30 * time.Second

// warmSources keeps the sources' warm connections (source.Conns) and
// the goroutines that open them when a source is bound or activated, so
// that its first commit finds one (a connection start and the first
// catalog reads cost a PostgreSQL server a tenth to a third of a second
// on a busy machine: commit time against pg_dump).
//
// It also primes what every dump of the node uses (prime): on this
// project's virtual machines the first touch of a page costs about
// 20 µs, and a fresh node's first dump touched its 4 MiB chunk buffer
// for the first time (see Backend.primeDump).
type warmSources struct {
	conns *source.Conns
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	prime func()
}

func (w *warmSources) init(prime func()) {
	w.conns = source.NewConns(warmIdle)
	w.ctx, w.stop = context.WithCancel(context.Background())
	w.prime = prime
}

func (w *warmSources) close() {
	w.stop()
	w.wg.Wait()
	w.conns.Close()
}

// start warms drv's connection in the background; failing only means
// the commit connects itself (and reports what fails then).
// The dump's buffers are primed after the connection: the commit needs
// that first.
func (w *warmSources) start(drv source.Driver) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if wd, ok := drv.(source.Warmer); ok {
			ctx, cancel := context.WithTimeout(w.ctx, 15*time.Second)
			wd.Warm(ctx)
			cancel()
		}
		if w.ctx.Err() == nil {
			w.prime()
		}
	}()
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
		drv, err := b.driverOf(s)
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

// sourceDump is one source's dump of a commit, in a temporary file until
// placed in the tree.
type sourceDump struct {
	tmp    string
	rel    string // its path in the tree
	chunks []Chunk
	size   int64
	fp     string // the database's fingerprint before the dump, if any
}

// dumpSource streams one source's dump through a dumpSink into a
// temporary file in the branch directory (outside the tree) and the
// batch. The file is removed on error.
func (b *Backend) dumpSource(ctx context.Context, br dotmesh.BranchRef, batch *cas.Batch, s *sourceConfig, rel string, dump func(context.Context, io.Writer) (source.Info, error), fp string) (*sourceDump, source.Info, error) {
	d := &sourceDump{rel: rel, fp: fp}
	f, err := os.CreateTemp(b.branchDir(br), tmpPrefix+"dump-*")
	if err != nil {
		return nil, source.Info{}, err
	}
	defer f.Close() // no fsync: the tree's copy is a cache; the commit syncs its chunks
	sink := b.newDumpSink(batch, f)
	sink.meter = dotmesh.StartProgress(ctx, "dumping "+s.Subdot, 0)
	info, err := dump(ctx, sink)
	if err != nil {
		sink.Abort()
		if serr := sink.err; serr != nil && !errors.Is(err, serr) {
			err = fmt.Errorf("%w (%v)", serr, err)
		}
	} else {
		d.chunks, d.size, err = sink.Close()
		sink.meter.Done()
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, info, sourceErr(s, err)
	}
	d.tmp = f.Name()
	return d, info, nil
}

// fingerprint returns drv's fingerprint, "" when it has none (an error
// only means none: the dump then decides, and says what fails).
func (b *Backend) fingerprint(ctx context.Context, drv source.Driver) string {
	f, ok := drv.(source.Fingerprinter)
	if !ok {
		return ""
	}
	fp, err := f.Fingerprint(ctx)
	if err != nil {
		b.log.InfoContext(ctx, "no fingerprint: the source is dumped", "err", err)
		return ""
	}
	return fp
}

// dumpSources dumps every live source of br in two phases: first every
// source's state is fixed at once (takeSnapshots: one instant across the
// databases), then the dumps stream one after another, all before any
// reaches the tree, so a failed dump leaves the tree as it was; their
// chunks go to batch as the dumps run. It returns the facts to record with the
// commit, the tree entries of the dump files it placed (with their
// chunks, for the snapshot) and what saveSourceStates needs once the
// commit is stored.
func (b *Backend) dumpSources(ctx context.Context, br dotmesh.BranchRef, batch *cas.Batch) (map[string]string, map[string]*Entry, []sourceState, error) {
	srcs, drvs, err := b.liveSources(br)
	if err != nil || len(srcs) == 0 {
		return nil, nil, nil, err
	}
	facts := map[string]string{}
	dumps := make([]*sourceDump, len(srcs))
	defer func() {
		for _, d := range dumps {
			if d != nil && d.tmp != "" {
				os.Remove(d.tmp)
			}
		}
	}()
	synced := map[string]*Entry{}
	if sm := b.loadSynced(br); sm != nil {
		for i := range sm.Entries {
			synced[sm.Entries[i].Path] = &sm.Entries[i]
		}
	}
	// inTree returns the tree's dump file's entry when the change cache
	// vouches for it: its chunks are the synced ones.
	inTree := func(rel string) *Entry {
		old := synced[rel]
		var cur unix.Stat_t
		if old == nil || unix.Lstat(filepath.Join(b.treeDir(br), filepath.FromSlash(rel)), &cur) != nil {
			return nil
		}
		if e := entryFromStat(rel, &cur); statMatches(old, &e) {
			return old
		}
		return nil
	}
	known := b.readSourceStates(br)
	snaps := b.takeSnapshots(ctx, br, srcs, drvs, known, inTree)
	defer func() {
		for i := range snaps {
			snaps[i].release()
		}
	}()
	for i := range snaps {
		if err := snaps[i].err; err != nil {
			return nil, nil, nil, fmt.Errorf("dump failed, nothing committed: %w", sourceErr(&srcs[i], err))
		}
	}
	var states []sourceState
	var instants []time.Time
	for i := range srcs {
		start := time.Now()
		s, sn := &srcs[i], &snaps[i]
		p := "source." + s.Subdot + "."
		rel := s.Subdot + "/" + drvs[i].FileName()
		facts[p+"kind"] = s.Kind
		facts[p+"url"] = source.Template(s.URL) // the binding travels: see dotmesh.SourceTemplates
		if st := sn.unchanged; st != nil {
			facts[p+"tool"] = st.Tool
			facts[p+"server"] = st.Server
			facts[p+"snapshot_time"] = sn.at.Format(time.RFC3339Nano)
			facts[p+"dump_bytes"] = strconv.FormatInt(sn.size, 10)
			facts[p+"dump_ms"] = "0"
			facts[p+"unchanged"] = "fingerprint"
			states = append(states, *st)
			instants = append(instants, sn.at)
			continue
		}
		dump := drvs[i].Dump // no Snapshotter: its instant is its dump's
		if sn.snap != nil {
			dump = sn.snap.Dump
		}
		d, info, err := b.dumpSource(ctx, br, batch, s, rel, dump, sn.fp)
		sn.release() // the next dumps need not wait with this one's transaction open
		if err != nil {
			return nil, nil, nil, fmt.Errorf("dump failed, nothing committed: %w", err)
		}
		dumps[i] = d
		states = append(states, sourceState{Subdot: s.Subdot, Key: stateKey(s), Fingerprint: sn.fp, Content: chunkDigest(d.chunks), Tool: info.Tool, Server: info.Server})
		facts[p+"tool"] = info.Tool
		facts[p+"server"] = info.Server
		facts[p+"snapshot_time"] = info.Time.UTC().Format(time.RFC3339Nano)
		facts[p+"dump_bytes"] = strconv.FormatInt(d.size, 10)
		facts[p+"dump_ms"] = strconv.FormatInt(time.Since(start).Milliseconds(), 10)
		instants = append(instants, info.Time)
	}
	facts[spreadKey] = dotmesh.SnapshotSpread(instants)
	placed := map[string]*Entry{}
	for i, d := range dumps {
		if d == nil {
			continue // unchanged by its fingerprint
		}
		dst := filepath.Join(b.treeDir(br), filepath.FromSlash(d.rel))
		if err := os.MkdirAll(filepath.Dir(dst), privateDir); err != nil {
			return nil, nil, nil, err
		}
		// An identical dump keeps the old file, whose stat data the change
		// cache vouches for: the snapshot then takes its chunks from there.
		if old := inTree(d.rel); old != nil && chunksEqual(old.Chunks, d.chunks) {
			continue
		}
		var cur unix.Stat_t
		if err := os.Rename(d.tmp, dst); err != nil {
			return nil, nil, nil, fmt.Errorf("placing the dump of source %s: %w", srcs[i].Subdot, err)
		}
		d.tmp = ""
		if err := unix.Lstat(dst, &cur); err != nil {
			return nil, nil, nil, fmt.Errorf("placing the dump of source %s: %w", srcs[i].Subdot, err)
		}
		e := entryFromStat(d.rel, &cur)
		if e.Type == TypeFile && e.Size == d.size {
			e.Chunks = d.chunks
			placed[d.rel] = &e
		}
	}
	return facts, placed, states, nil
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
			b.log.WarnContext(ctx, "commit has no dump of this source; database left as it is", "branch", br.String(), "subdot", srcs[i].Subdot)
			continue
		}
		dotmesh.ReportPhase(ctx, "loading "+srcs[i].Subdot) // the tool reads the file itself: no byte count
		if err := drvs[i].Restore(ctx, file); err != nil {
			return sourceErr(&srcs[i], err)
		}
	}
	return nil
}

// sourcesUsage adds the sources' changes to u: a database is dirty when a
// fresh dump differs from the dump file in the tree (which equals head's,
// whose entries are in head, unless the files part already counts it).
// Skipped once u is dirty. A database whose fingerprint is the one it had
// when its dump last equalled head's is clean without a dump.
func (b *Backend) sourcesUsage(ctx context.Context, br dotmesh.BranchRef, u dotmesh.Usage, head map[string]*Entry) (dotmesh.Usage, error) {
	if u.Dirty {
		return u, nil
	}
	srcs, drvs, err := b.liveSources(br)
	if err != nil || len(srcs) == 0 {
		return u, err
	}
	states := b.readSourceStates(br)
	var learnt []sourceState
	for i := range srcs {
		s := &srcs[i]
		file := filepath.Join(b.treeDir(br), s.Subdot, drvs[i].FileName())
		open := func() (io.ReadCloser, error) { return os.Open(file) }
		same, size, st, err := b.sourceSame(ctx, s, drvs[i], head[s.Subdot+"/"+drvs[i].FileName()], states, open, b.branchDir(br))
		if err != nil {
			return u, fmt.Errorf("checking for changes: %w", err)
		}
		if !same {
			u.Dirty = true
			u.DirtyBytes += size
		} else if st != nil {
			learnt = append(learnt, *st)
		}
	}
	if len(learnt) > 0 {
		if err := b.saveSourceStates(br, learnt); err != nil {
			b.log.WarnContext(ctx, "could not record the sources' fingerprints", "branch", br.String(), "err", err)
		}
	}
	return u, nil
}

// sourceSame says whether s's database would dump to the content of
// head's dump file (headEntry, nil when head has none), whose bytes open
// reads (an error wrapping fs.ErrNotExist: none): a fingerprint recorded
// when its dump last equalled that content vouches without a dump,
// otherwise it dumps and compares as the bytes come. The state it
// returns, when not nil, is a fingerprint learnt for saveSourceStates.
func (b *Backend) sourceSame(ctx context.Context, s *sourceConfig, drv source.Driver, headEntry *Entry, states map[string]sourceState, open func() (io.ReadCloser, error), scratchParent string) (bool, int64, *sourceState, error) {
	fp := b.fingerprint(ctx, drv)
	var content string
	if headEntry != nil && headEntry.Type == TypeFile {
		content = chunkDigest(headEntry.Chunks)
	}
	if fp != "" && content != "" {
		if st, ok := states[s.Subdot]; ok && st.Key == stateKey(s) && st.Fingerprint == fp && st.Content == content {
			return true, 0, nil, nil // unchanged since its dump equalled head's
		}
	}
	same, size, err := b.compareDump(ctx, s, drv, open, scratchParent)
	if err != nil || !same || fp == "" || content == "" {
		return same, size, nil, err
	}
	st := sourceState{Subdot: s.Subdot, Key: stateKey(s), Fingerprint: fp, Content: content}
	if old, ok := states[s.Subdot]; ok && old.Key == st.Key && old.Content == content {
		st.Tool, st.Server = old.Tool, old.Server // still the versions of that content's dump
	}
	return true, size, &st, nil
}

// errDumpDiffers stops a comparing dump at the first difference.
var errDumpDiffers = errors.New("the dump differs")

// compareDump dumps the source and compares the bytes with those open
// reads (an error wrapping fs.ErrNotExist: there are none) as they come,
// stopping at the first difference. It returns the dump's size (at
// least the file's when stopped early, for a file).
func (b *Backend) compareDump(ctx context.Context, s *sourceConfig, drv source.Driver, open func() (io.ReadCloser, error), scratchParent string) (bool, int64, error) {
	f, err := open()
	if errors.Is(err, fs.ErrNotExist) {
		f = nil
	} else if err != nil {
		return false, 0, err
	} else {
		defer f.Close()
	}
	cw := &compareWriter{scratch: scratch{parent: scratchParent}}
	defer cw.remove()
	var fileSize int64
	if f != nil {
		cw.r = bufio.NewReaderSize(f, 1<<20)
		if st, ok := f.(interface{ Stat() (fs.FileInfo, error) }); ok {
			if fi, err := st.Stat(); err == nil {
				fileSize = fi.Size()
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = drv.Dump(ctx, cw)
	if cw.differ {
		return false, max(cw.n, fileSize), nil
	}
	if err != nil {
		return false, 0, sourceErr(s, err)
	}
	if cw.r == nil {
		return false, cw.n, nil
	}
	if _, err := cw.r.ReadByte(); err != io.EOF {
		return false, max(cw.n, fileSize), nil // the file is longer
	}
	return true, cw.n, nil
}

// compareWriter compares what is written with r.
type compareWriter struct {
	scratch
	r      *bufio.Reader // nil: there is nothing to compare with
	buf    []byte
	n      int64
	differ bool
}

func (c *compareWriter) Write(p []byte) (int, error) {
	if c.differ {
		return 0, errDumpDiffers
	}
	if c.r == nil {
		c.differ = true
		c.n += int64(len(p))
		return 0, errDumpDiffers
	}
	done := 0
	for done < len(p) {
		k := min(len(p)-done, 1<<20)
		if cap(c.buf) < k {
			c.buf = make([]byte, 1<<20)
		}
		got, _ := io.ReadFull(c.r, c.buf[:k])
		if got < k || !bytes.Equal(c.buf[:k], p[done:done+k]) {
			c.differ = true
			c.n += int64(done + got)
			return done, errDumpDiffers
		}
		done += k
	}
	c.n += int64(len(p))
	return len(p), nil
}

// sourceState records that a source's database, while it had
// Fingerprint, dumped to content Content (a chunkDigest), with Tool from
// Server when a commit made the dump. Kept in
// branches/<dot>/<branch>/source-states.json, a cache: lost or stale, it
// only costs a dump.
type sourceState struct {
	Subdot      string `json:"subdot"`
	Key         string `json:"key"` // stateKey of the binding
	Fingerprint string `json:"fingerprint"`
	Content     string `json:"content"`
	Tool        string `json:"tool,omitempty"` // the dump's, for commits that skip it
	Server      string `json:"server,omitempty"`
}

func (b *Backend) sourceStatesPath(br dotmesh.BranchRef) string {
	return filepath.Join(b.branchDir(br), "source-states.json")
}

// stateKey identifies a binding (kind and URL) without keeping the URL,
// which may hold a password.
func stateKey(s *sourceConfig) string {
	return cas.Sum([]byte(s.Kind + "\x00" + s.URL)).String()
}

// chunkDigest identifies content by its chunk list.
func chunkDigest(chunks []Chunk) string {
	buf := make([]byte, 0, len(chunks)*(cas.HashSize+4))
	for _, c := range chunks {
		buf = append(buf, c.Hash[:]...)
		buf = binary.BigEndian.AppendUint32(buf, c.Size)
	}
	return cas.Sum(buf).String()
}

func (b *Backend) readSourceStates(br dotmesh.BranchRef) map[string]sourceState {
	out := map[string]sourceState{}
	data, err := os.ReadFile(b.sourceStatesPath(br))
	if err == nil {
		data, err = b.openFile("source states", data)
	}
	if err != nil {
		return out
	}
	var list []sourceState
	if json.Unmarshal(data, &list) != nil {
		return out
	}
	for _, s := range list {
		out[s.Subdot] = s
	}
	return out
}

// saveSourceStates replaces the states of the given subdots (one without
// a fingerprint is forgotten). Not synced: after a crash an old or no
// state only costs a dump, and a state is a fact about the database
// whenever it was written.
func (b *Backend) saveSourceStates(br dotmesh.BranchRef, states []sourceState) error {
	cur := b.readSourceStates(br)
	for _, s := range states {
		if s.Fingerprint == "" {
			delete(cur, s.Subdot)
		} else {
			cur[s.Subdot] = s
		}
	}
	list := make([]sourceState, 0, len(cur))
	for _, s := range cur {
		list = append(list, s)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Subdot < list[j].Subdot })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(b.branchDir(br), tmpPrefix+"states-"+randomSuffix())
	if err := os.WriteFile(tmp, b.sealFile("source states", data), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, b.sourceStatesPath(br)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
