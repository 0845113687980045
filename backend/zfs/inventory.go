package zfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// fsInfo is one filesystem of a dot.
type fsInfo struct {
	ds         dataset
	branch     string // owner, from the name
	gen        int    // generation, 0 for a receive staging name
	state      string // stateLive, stateOld... ("" when unset)
	mountpoint string
	originName string // "" unless a clone
	origin     *snapInfo
	mounted    bool
	referenced int64       // bytes, -1 when unknown
	refquota   int64       // bytes, 0 when none (VolumeSizer)
	pristine   string      // pristineProp: "" when unset
	snaps      []*snapInfo // oldest first
}

// pristineAt reports whether f is known to hold exactly the data of
// commit id: Rollback or CreateBranch made it as a clone of id's
// snapshot, unmounted, with pristineProp set to id, and nothing has
// changed its data since.
// Only three things can: mounting it (activateFS), receiving into it
// (Receive) and rolling it back (Rollback), and each of them removes the
// mark first. A promote moves snapshots, not data, and keeps it.
func (f *fsInfo) pristineAt(id dotmesh.CommitID) bool {
	return f.pristine != "" && f.pristine == string(id) && !f.mounted && f.mountpoint == "none"
}

// unseen reports whether nobody can have seen or changed f since it was
// made from its pristine commit: the working state FollowHead moves to a
// branch's head, and whose switch therefore needs no journal record.
func (f *fsInfo) unseen() bool {
	return f.pristine != "" && !f.mounted && f.mountpoint == "none"
}

// snapInfo is one snapshot of a dot.
type snapInfo struct {
	fs       *fsInfo
	name     string
	tag      string // io.dotmesh:branch, "" when unset
	deferred bool   // zfs destroy -d was asked: a deleted commit kept for its clones
	clones   []*fsInfo
}

func (s *snapInfo) snap() snapshot { return snapshot{s.fs.ds, s.name} }

// branch is the branch whose commit this is: the tag, or for an untagged
// snapshot (a crash between receive and tagging) the filesystem's owner.
func (s *snapInfo) branch() string {
	if s.tag != "" {
		return s.tag
	}
	return s.fs.branch
}

func (s *snapInfo) isCommit() bool {
	return dotmesh.ValidateID("commit", s.name, false) == nil
}

func (s *snapInfo) index() int {
	for i, x := range s.fs.snaps {
		if x == s {
			return i
		}
	}
	return -1
}

func (f *fsInfo) last() *snapInfo {
	if len(f.snaps) == 0 {
		return nil
	}
	return f.snaps[len(f.snaps)-1]
}

// dotInv is what ZFS holds for one dot, read with a single `zfs get -r`.
type dotInv struct {
	dot    dotmesh.DotID
	exists bool // the container dataset exists
	fss    []*fsInfo
	snaps  map[string]*snapInfo // by snapshot name
}

// live returns the branch's working state: its live filesystem of the
// highest generation.
func (inv *dotInv) live(branch string) *fsInfo {
	var best *fsInfo
	for _, f := range inv.fss {
		if f.branch == branch && f.state == stateLive && f.gen > 0 && (best == nil || f.gen > best.gen) {
			best = f
		}
	}
	return best
}

// nextGen returns a generation above every filesystem of the branch.
func (inv *dotInv) nextGen(branch string) int {
	n := 0
	for _, f := range inv.fss {
		if f.branch == branch {
			n = max(n, f.gen)
		}
	}
	return n + 1
}

func (inv *dotInv) fs(d dataset) *fsInfo {
	for _, f := range inv.fss {
		if f.ds == d {
			return f
		}
	}
	return nil
}

// commit returns the snapshot of a commit that has not been deleted.
func (inv *dotInv) commit(id dotmesh.CommitID) *snapInfo {
	s := inv.snaps[string(id)]
	if s == nil || s.deferred {
		return nil
	}
	return s
}

// commitsOf lists the live commits of branch, wherever they are stored.
func (inv *dotInv) commitsOf(branch string) []*snapInfo {
	var out []*snapInfo
	for _, f := range inv.fss {
		for _, s := range f.snaps {
			if s.isCommit() && !s.deferred && s.branch() == branch {
				out = append(out, s)
			}
		}
	}
	return out
}

var invProps = []string{"type", "origin", "defer_destroy", "mounted", "mountpoint", "referenced", "refquota", stateProp, userBranchProp, pristineProp}

// invCacheTTL bounds how long a dot's listing is reused (see inventory):
// long enough that the pushes into a dot that only this node changes
// list it once, not once per push (a 1 GiB dot's commit and push take
// longer than a few seconds, and a listing is 20-200 ms on zfs-fuse).
const invCacheTTL = time.Minute

// invCache keeps the last listing of each dot.
type invCache struct {
	mu sync.Mutex
	m  map[dotmesh.DotID]cachedInv
}

type cachedInv struct {
	rows    []propRow // read-only once cached
	missing bool      // the container did not exist
	seq     uint64    // zfsChanges before the listing was read
	at      time.Time
}

// inventory reads every filesystem and snapshot of a dot.
//
// One listing costs a zfs command (5-10 ms on zfs-fuse), and one transfer
// asks several times (State, the receive, Finish), so the rows are reused
// while no zfs command that changes anything has run in this process since
// they were read (zfsChanges, counted by every backend instance; the
// counter is read before the listing, so a change racing with it
// invalidates it too) and for at most invCacheTTL, which bounds how long
// a change made behind the backend's back (by hand, say) goes unseen; a
// zfs command that names a dataset such a change moved or removed fails
// cleanly, and counts as a change, so the retry lists again. What
// the listing does not show, file contents, never comes from it: dirty
// checks snapshot the working state or rely on it being unmounted.
func (b *Backend) inventory(ctx context.Context, dot dotmesh.DotID) (*dotInv, error) {
	b.pendingMu.Lock()
	failed := len(b.failed[dot]) > 0
	b.pendingMu.Unlock()
	if failed {
		if err := b.finishPending(ctx, dot); err != nil {
			return nil, err
		}
	}
	seq := invSeq()
	b.invs.mu.Lock()
	c, ok := b.invs.m[dot]
	b.invs.mu.Unlock()
	if !ok || c.seq != seq || time.Since(c.at) >= invCacheTTL {
		at := time.Now()
		rows, err := b.z.get(ctx, true, invProps, b.container(dot))
		missing := errors.Is(err, ErrNoDataset)
		if err != nil && !missing {
			return nil, fmt.Errorf("listing datasets of dot %s: %w", dot, err)
		}
		c = cachedInv{rows: rows, missing: missing, seq: seq, at: at}
		b.invs.mu.Lock()
		if b.invs.m == nil {
			b.invs.m = map[dotmesh.DotID]cachedInv{}
		}
		if len(b.invs.m) > 1024 {
			clear(b.invs.m)
		}
		b.invs.m[dot] = c
		b.invs.mu.Unlock()
	}
	if c.missing {
		return &dotInv{dot: dot, snaps: map[string]*snapInfo{}}, nil
	}
	return parseInventory(dot, b.container(dot), c.rows)
}

// lastInventory returns dot's last listing, however old, or nil. Only a
// caller that zfs itself checks may act on it: Send names snapshots by
// commit id, which no other snapshot has, and zfs send refuses names
// that moved or are gone and bases that are no incremental source, before
// it writes anything (see Send).
func (b *Backend) lastInventory(dot dotmesh.DotID) *dotInv {
	b.pendingMu.Lock()
	failed := len(b.failed[dot]) > 0
	b.pendingMu.Unlock()
	b.invs.mu.Lock()
	c, ok := b.invs.m[dot]
	b.invs.mu.Unlock()
	if failed || !ok || c.missing {
		return nil
	}
	inv, err := parseInventory(dot, b.container(dot), c.rows)
	if err != nil {
		return nil
	}
	return inv
}

// patchInventory keeps dot's cached listing current across changes this
// backend has just made to the dot, under its lock: when the listing was
// current right before them (read with counter value seq) and they are
// the only zfs changes since (they count n commands), edit applies their
// effect to a copy of the rows; otherwise the listing is dropped. Either
// way the next inventory is right; the patch only saves a listing.
func (b *Backend) patchInventory(dot dotmesh.DotID, seq, n uint64, edit func([]propRow) []propRow) {
	b.invs.mu.Lock()
	defer b.invs.mu.Unlock()
	c, ok := b.invs.m[dot]
	if !ok {
		return
	}
	if c.missing || c.seq != seq || zfsChanges.Load() != seq+n || time.Since(c.at) >= invCacheTTL {
		delete(b.invs.m, dot)
		return
	}
	c.rows = edit(slices.Clone(c.rows))
	c.seq = seq + n
	b.invs.m[dot] = c
}

// forgetInventory drops dot's cached listing, which zfs showed stale.
func (b *Backend) forgetInventory(dot dotmesh.DotID) {
	b.invs.mu.Lock()
	delete(b.invs.m, dot)
	b.invs.mu.Unlock()
}

// invSeq returns the change counter to pass to patchInventory, read
// before the changes.
func invSeq() uint64 { return zfsChanges.Load() }

// snapshotRows are the listing rows of a new snapshot (appended after its
// filesystem's rows, as zfs lists the newest last).
func snapshotRows(s snapshot, tag string) []propRow {
	if tag == "" {
		tag = "-"
	}
	n := s.String()
	return []propRow{{n, "type", "snapshot"}, {n, "defer_destroy", "off"}, {n, userBranchProp, tag}}
}

// withoutDataset drops the rows of filesystem d and of its snapshots.
func withoutDataset(rows []propRow, d dataset) []propRow {
	return slices.DeleteFunc(rows, func(r propRow) bool {
		return r.name == d.name || strings.HasPrefix(r.name, d.name+"@")
	})
}

// propValue returns the value of property p of name in rows, or "-".
func propValue(rows []propRow, name, p string) string {
	for _, r := range rows {
		if r.name == name && r.prop == p {
			return r.value
		}
	}
	return "-"
}

func parseInventory(dot dotmesh.DotID, container dataset, rows []propRow) (*dotInv, error) {
	inv := &dotInv{dot: dot, snaps: map[string]*snapInfo{}}
	type entry struct {
		name  string
		props map[string]string
	}
	var order []*entry
	byName := map[string]*entry{}
	for _, r := range rows {
		e := byName[r.name]
		if e == nil {
			e = &entry{name: r.name, props: map[string]string{}}
			byName[r.name] = e
			order = append(order, e)
		}
		e.props[r.prop] = r.value
	}
	prefix := container.name + "/"
	fsByName := map[string]*fsInfo{}
	for _, e := range order {
		if e.name == container.name {
			inv.exists = true
			continue
		}
		rest, ok := strings.CutPrefix(e.name, prefix)
		if !ok {
			continue
		}
		switch e.props["type"] {
		case "filesystem":
			if strings.Contains(rest, "/") {
				continue // not made by this backend
			}
			branch, gen, ok := parseLeaf(rest)
			if !ok {
				continue
			}
			f := &fsInfo{ds: dataset{e.name}, branch: branch, gen: gen, mounted: e.props["mounted"] == "yes", mountpoint: e.props["mountpoint"], referenced: -1}
			if n, err := strconv.ParseInt(e.props["referenced"], 10, 64); err == nil {
				f.referenced = n
			}
			if n, err := strconv.ParseInt(e.props["refquota"], 10, 64); err == nil && n > 0 {
				f.refquota = n
			}
			if p := e.props[pristineProp]; p != "-" && dotmesh.ValidateID("commit", p, false) == nil {
				f.pristine = p
			}
			switch st := e.props[stateProp]; {
			case gen == 0:
				f.state = stateRecv
			case st == stateLive || st == stateStaged || st == stateRecv || st == stateOld || st == stateDel:
				f.state = st
			}
			if o := e.props["origin"]; o != "" && o != "-" {
				f.originName = o
			}
			fsByName[e.name] = f
			inv.fss = append(inv.fss, f)
		case "snapshot":
			fsName, snapName, _ := strings.Cut(e.name, "@")
			f := fsByName[fsName]
			if f == nil || validComponent("snapshot", snapName) != nil {
				continue
			}
			s := &snapInfo{fs: f, name: snapName, deferred: e.props["defer_destroy"] == "on"}
			if t := e.props[userBranchProp]; t != "-" && dotmesh.ValidateName("branch", t) == nil {
				s.tag = t
			}
			f.snaps = append(f.snaps, s)
			if prev := inv.snaps[snapName]; prev != nil {
				return nil, fmt.Errorf("%w: snapshot %s exists twice in dot %s (%s and %s)", dotmesh.ErrCorrupt, snapName, dot, prev.fs.ds, f.ds)
			}
			inv.snaps[snapName] = s
		}
	}
	for _, f := range inv.fss {
		if f.originName == "" {
			continue
		}
		_, on, _ := strings.Cut(f.originName, "@")
		if s := inv.snaps[on]; s != nil && s.snap().String() == f.originName {
			f.origin = s
			s.clones = append(s.clones, f)
		}
	}
	sort.SliceStable(inv.fss, func(i, j int) bool { return inv.fss[i].ds.name < inv.fss[j].ds.name })
	return inv, nil
}
