package dotmesh

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"
)

// Paging through a long history without decoding all of it: a commit
// record is mostly its Metadata and Info maps, which a walk along the
// parents does not need. The walk decodes only id and parent of each
// record; the commits of the page are decoded in full.

// commitLinks are a dot's commit records by id, each with its parent.
type commitLinks map[CommitID]commitLink

type commitLink struct {
	parent CommitID
	kv     KV
}

func (r registry) links(ctx context.Context, id DotID) (commitLinks, error) {
	kvs, err := r.s.List(ctx, commitPrefix(id))
	if err != nil {
		return nil, err
	}
	out := make(commitLinks, len(kvs))
	for _, kv := range kvs {
		cid, parent, err := commitLinkOf(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: registry key %s: %v", ErrCorrupt, kv.Key, err)
		}
		out[cid] = commitLink{parent: parent, kv: kv}
	}
	return out, nil
}

// commitLinkOf reads id and parent of an encoded Commit. encode writes
// them among the first fields ({"id":…,"dot":…,"branch":…,"parent":…),
// whose values hold no escapes, so a scan of that prefix finds them; a
// record without a parent (a first commit) or in any other shape is
// decoded in full.
func commitLinkOf(v []byte) (id, parent CommitID, err error) {
	rest := v
	var vals [4][]byte
	for i, key := range [...]string{`{"id":"`, `,"dot":"`, `,"branch":"`, `,"parent":"`} {
		if !bytes.HasPrefix(rest, []byte(key)) {
			return fullCommitLink(v)
		}
		rest = rest[len(key):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
			return fullCommitLink(v)
		}
		vals[i], rest = rest[:end], rest[end+1:]
	}
	if len(rest) == 0 || (rest[0] != ',' && rest[0] != '}') || !utf8.Valid(vals[0]) || !utf8.Valid(vals[3]) {
		return fullCommitLink(v)
	}
	return CommitID(vals[0]), CommitID(vals[3]), nil
}

func fullCommitLink(v []byte) (CommitID, CommitID, error) {
	var l struct {
		ID     CommitID `json:"id"`
		Parent CommitID `json:"parent"`
	}
	err := json.Unmarshal(v, &l)
	return l.ID, l.Parent, err
}

// commit returns one commit record of dot id, or nil when it is not
// here (a pruned history's parent).
func (r registry) commit(ctx context.Context, id DotID, c CommitID) (*Commit, error) {
	kv, err := r.s.Get(ctx, commitKey(id, c))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decode[Commit](kv)
}

// chain returns the ids from head back along parents (ancestry's order).
func (ls commitLinks) chain(head CommitID) []CommitID {
	var out []CommitID
	walkParents(head, func(id CommitID) (CommitID, bool) {
		l, ok := ls[id]
		if ok {
			out = append(out, id)
		}
		return l.parent, ok
	})
	return out
}

// walkParents calls visit from head back along parents until visit
// finds no commit, the history starts or it loops.
func walkParents(head CommitID, visit func(CommitID) (parent CommitID, ok bool)) {
	seen := make(map[CommitID]bool)
	for id := head; id != "" && !seen[id]; {
		seen[id] = true
		parent, ok := visit(id)
		if !ok {
			return
		}
		id = parent
	}
}

func (ls commitLinks) commit(id CommitID) (*Commit, error) { return decode[Commit](ls[id].kv) }

// LogPage returns limit commits of a branch's history (the current
// branch when branch is empty), newest first, after skipping the skip
// newest, and whether older ones follow: Log for one page of a long
// history. It marks where a pruned history starts as Log does.
func (n *Node) LogPage(ctx context.Context, name DotName, branch string, skip, limit int) ([]*Commit, bool, error) {
	if skip < 0 || limit <= 0 {
		return nil, false, fmt.Errorf("%w: log page skip %d, limit %d: give skip >= 0 and limit > 0", ErrInvalidArgument, skip, limit)
	}
	d, b, _, err := n.resolveBranch(ctx, name, branch)
	if err != nil {
		return nil, false, err
	}
	ls, err := n.reg.links(ctx, d.ID)
	if err != nil {
		return nil, false, err
	}
	return ls.page(b.Head, skip, limit)
}

// page returns limit commits of the first-parent history from head after
// skipping skip, whether older ones follow, and marks where a pruned
// history starts as markPruned does for Log. limit <= 0 means all.
func (ls commitLinks) page(head CommitID, skip, limit int) ([]*Commit, bool, error) {
	ids := ls.chain(head)
	if skip >= len(ids) {
		return nil, false, nil
	}
	if limit <= 0 {
		limit = len(ids)
	}
	more := len(ids) > skip+limit
	ids = ids[skip:min(skip+limit, len(ids))]
	out := make([]*Commit, len(ids))
	for i, id := range ids {
		var err error
		if out[i], err = ls.commit(id); err != nil {
			return nil, false, err
		}
	}
	for i, c := range out {
		_, has := ls[c.Parent]
		c.Pruned = !more && i == len(out)-1 && c.Parent != "" && !has
	}
	return out, more, nil
}

// history is History: the page of the first-parent history from the
// commit ref names (see resolve), HEAD being branch's head.
func (n *Node) history(ctx context.Context, dot DotName, branch, ref string, skip, limit int) ([]*Commit, bool, error) {
	if skip < 0 {
		return nil, false, fmt.Errorf("%w: history skip %d: give skip >= 0", ErrInvalidArgument, skip)
	}
	if ref == "" {
		ref = "HEAD"
	}
	r, err := ParseRef(ref)
	if err != nil {
		return nil, false, err
	}
	d, b, _, err := n.resolveBranch(ctx, dot, branch)
	if err != nil {
		return nil, false, err
	}
	if r.Name == "" && r.Back == 0 && b.Head == "" {
		return nil, false, nil // a branch without commits has an empty history
	}
	start, err := n.resolve(ctx, d, b, ref)
	if err != nil {
		return nil, false, err
	}
	ls, err := n.reg.links(ctx, d.ID)
	if err != nil {
		return nil, false, err
	}
	return ls.page(start.ID, skip, limit)
}

// Decorations names the branches (by their heads) and tags ("tag: v1")
// at each commit of a dot that has any, as git log --decorate shows
// them: branches first, by name, then tags by name.
func (n *Node) Decorations(ctx context.Context, dot DotName) (map[CommitID][]string, error) {
	d, err := n.Dot(ctx, dot)
	if err != nil {
		return nil, err
	}
	bs, err := n.reg.branches(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	ts, err := n.reg.tags(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	out := make(map[CommitID][]string)
	for _, b := range bs {
		if b.Head != "" {
			out[b.Head] = append(out[b.Head], b.Name)
		}
	}
	for _, t := range ts { // listed in key order: by name
		out[t.Commit] = append(out[t.Commit], "tag: "+t.Name)
	}
	return out, nil
}

// DotNames returns the name of every dot, sorted by namespace and name:
// what a paged list of dots reads before asking Status of the few shown.
func (n *Node) DotNames(ctx context.Context) ([]DotName, error) {
	dots, err := n.reg.dots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DotName, len(dots))
	for i, d := range dots {
		out[i] = d.DotName()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
