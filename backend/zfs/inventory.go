package zfs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

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
	snaps      []*snapInfo // oldest first
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

var invProps = []string{"type", "origin", "defer_destroy", "mounted", "mountpoint", stateProp, userBranchProp}

// inventory reads every filesystem and snapshot of a dot.
func (b *Backend) inventory(ctx context.Context, dot dotmesh.DotID) (*dotInv, error) {
	rows, err := b.z.get(ctx, true, invProps, b.container(dot))
	if errors.Is(err, ErrNoDataset) {
		return &dotInv{dot: dot, snaps: map[string]*snapInfo{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing datasets of dot %s: %w", dot, err)
	}
	return parseInventory(dot, b.container(dot), rows)
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
			f := &fsInfo{ds: dataset{e.name}, branch: branch, gen: gen, mounted: e.props["mounted"] == "yes", mountpoint: e.props["mountpoint"]}
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
