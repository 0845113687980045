package torture

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// branchModel is what a node has acknowledged about one branch.
type branchModel struct {
	// Head is the acknowledged head commit ("" before the first commit).
	// When HeadMsg is set instead, the head is a commit with that message
	// whose id the node never told (a commit cut off by a kill), on top
	// of Must[0].
	Head, HeadMsg string
	// Must are acknowledged commits the branch's log must hold, newest
	// first; the log may hold more (gc keeps fork points, a shallow push
	// keeps older commits the receiver had).
	Must []string
	// Tree is the hash of the working tree: the head's content, or what
	// was written into it since (dirty).
	Tree string
}

func (b *branchModel) clone() *branchModel {
	c := *b
	c.Must = slices.Clone(b.Must)
	return &c
}

// dotModel is one dot on one node.
type dotModel struct {
	Current  string // "" when not known (a dot made by a push)
	Branches map[string]*branchModel
	// NewBranchOK names branches an interrupted operation may have made.
	NewBranchOK func(name string) bool
}

func (d *dotModel) clone() *dotModel {
	if d == nil {
		return nil
	}
	c := &dotModel{Current: d.Current, Branches: map[string]*branchModel{}, NewBranchOK: d.NewBranchOK}
	for k, b := range d.Branches {
		c.Branches[k] = b.clone()
	}
	return c
}

// model is what the nodes acknowledged, and the content of every commit
// ever asked for.
type model struct {
	nodes []map[string]*dotModel // node index -> dot name -> dot
	// uncertain holds, for a dot an operation was cut off on, the states
	// it may be in (nil: the dot may not exist); resolved by the next
	// check, which adopts the state found.
	uncertain []map[string][]*dotModel
	msgTree   map[string]string // commit message -> tree hash written for it
	idMsg     map[string]string // commit id -> message (ids are the same on every node)
}

func newModel(nodes int) *model {
	m := &model{msgTree: map[string]string{}, idMsg: map[string]string{}}
	for range nodes {
		m.nodes = append(m.nodes, map[string]*dotModel{})
		m.uncertain = append(m.uncertain, map[string][]*dotModel{})
	}
	return m
}

// treeOf is the content hash of commit id's tree.
func (m *model) treeOf(id string) string {
	if id == "" {
		return emptyTree
	}
	return m.msgTree[m.idMsg[id]]
}

// dots lists the dot names the model has on node i, certain or not.
func (m *model) dots(i int) []string {
	names := slices.Collect(maps.Keys(m.nodes[i]))
	for d := range m.uncertain[i] {
		if _, ok := m.nodes[i][d]; !ok {
			names = append(names, d)
		}
	}
	sort.Strings(names)
	return names
}

// cutOff records that an operation on dot of node i was cut off by a
// kill: the dot is in state before or after (either may be nil).
func (m *model) cutOff(i int, dot string, before, after *dotModel) {
	cands := m.uncertain[i][dot]
	if cands == nil {
		cands = []*dotModel{before}
	}
	m.uncertain[i][dot] = append(cands, after)
	delete(m.nodes[i], dot)
}

// treeHash hashes the regular files and symlinks under dir: relative
// path, kind and content. Directories alone do not count: a subdot made
// by `dm path` but never written is no change.
func treeHash(dir string) (string, error) {
	type ent struct{ path, sum string }
	var ents []ent
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			ents = append(ents, ent{rel, "f" + hex.EncodeToString(h.Sum(nil))})
		case fi.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			ents = append(ents, ent{rel, "l" + t})
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(ents, func(a, b int) bool { return ents[a].path < ents[b].path })
	h := sha256.New()
	for _, e := range ents {
		fmt.Fprintf(h, "%s\x00%s\n", e.path, e.sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// emptyTree is treeHash of a tree without files.
var emptyTree = func() string {
	h := sha256.Sum256(nil)
	return hex.EncodeToString(h[:])[:16]
}()

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func shortList(ids []string) string {
	var s []string
	for _, id := range ids {
		s = append(s, short(id))
	}
	return "[" + strings.Join(s, " ") + "]"
}
