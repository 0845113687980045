package dotmesh

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
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
		if err := out.add(kv); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// add adds the commit record kv.
func (ls commitLinks) add(kv KV) error {
	cid, parent, err := linkOf(kv.Key, kv.Value)
	if err != nil {
		return err
	}
	ls[cid] = commitLink{parent: parent, kv: kv}
	return nil
}

// linkOf is commitLinkOf of the record at key, a corrupt one's error
// naming the key (a listing scans keys as bytes, others hold strings).
func linkOf[K string | []byte](key K, value []byte) (id, parent CommitID, err error) {
	if id, parent, err = commitLinkOf(value); err != nil {
		return "", "", fmt.Errorf("%w: registry key %s: %v", ErrCorrupt, key, err)
	}
	return id, parent, nil
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
	return r.cc.decode(kv)
}

// chain returns the ids from head back along parents (ancestry's order).
func (ls commitLinks) chain(head CommitID) []CommitID {
	out, _ := chainOf(ls, head, 0) // a map lookup fails not
	return out
}

// count is len(ls.chain(head)) without building the chain: a listing
// counts the history of every dot.
func (ls commitLinks) count(head CommitID) int {
	n := 0
	for id := head; id != ""; n++ {
		l, ok := ls[id]
		if !ok {
			return n
		}
		if n >= len(ls) { // a loop (a damaged registry): chain stops at it
			return len(ls.chain(head))
		}
		id = l.parent
	}
	return n
}

// linkReader finds a dot's commit records by id: commitLinks once listed,
// or pointLinks, which reads them one at a time.
type linkReader interface {
	// link returns commit id's link, and false when it is not here.
	link(id CommitID) (commitLink, bool, error)
	// all returns every commit record of the dot, for a commit id
	// prefix, which only a listing resolves.
	all() (commitLinks, error)
}

func (ls commitLinks) link(id CommitID) (commitLink, bool, error) {
	l, ok := ls[id]
	return l, ok, nil
}

func (ls commitLinks) all() (commitLinks, error) { return ls, nil }

// maxPointReads bounds the commits a walk reads one at a time: a page of
// a long history needs a few records of thousands, and a point read
// costs less than listing them all (one round trip each on etcd, so many
// are not).
const maxPointReads = 64

// pointLinks is a linkReader that reads the records a walk visits, one
// at a time, remembering them; all lists the dot's records once.
type pointLinks struct {
	ctx    context.Context
	r      registry
	dot    DotID
	got    commitLinks
	listed bool
}

// linkReader returns a reader of dot id's commit records for a walk
// along at most reads commits (<= 0: all): point reads for a short walk,
// else one listing.
func (r registry) linkReader(ctx context.Context, id DotID, reads int) (linkReader, error) {
	if reads <= 0 || reads > maxPointReads {
		return r.links(ctx, id)
	}
	return &pointLinks{ctx: ctx, r: r, dot: id, got: commitLinks{}}, nil
}

// historyReader is linkReader for reading a history from head, where a
// listing may be the records kept from the last one while the dot's did
// not change (listcache.go): a log of a long history is not a listing of
// every record each time. Writes resolve with linkReader, which reads
// what the store holds now, not what the watch told this node of.
func (r registry) historyReader(ctx context.Context, id DotID, reads int, head CommitID) (linkReader, error) {
	if (reads > 0 && reads <= maxPointReads) || r.lc == nil {
		return r.linkReader(ctx, id, reads)
	}
	ls, stamp, ok := r.lc.keptLinks(id, head)
	if ok {
		return &keptReader{commitLinks: ls, memo: stamp.memo}, nil
	}
	ls, err := r.links(ctx, id)
	if err != nil {
		return nil, err
	}
	if memo := r.lc.keepLinks(id, stamp, ls); memo != nil {
		return &keptReader{commitLinks: ls, memo: memo}, nil
	}
	return ls, nil
}

// keptReader reads a kept listing (listcache.go) with the memo of its
// chains, which the node's requests share: a log of a long history that
// did not change walks it along the parents once, not on every request
// (10,000 map lookups by id to walk it, and as many again to find the
// page's records and check them, were most of the node's time).
type keptReader struct {
	commitLinks
	memo *chainMemo
	walk *chainWalk // the chain this reader walked (chain)
	cur  int        // where in walk the next link is looked for (linkAt)
}

// chainMemo is the last chain walked through a kept listing.
type chainMemo struct {
	mu   sync.Mutex
	last *chainWalk
}

// chainWalk is the chain from head, with each record and whether it can
// go out as it is (plainRecord). Read-only once made.
type chainWalk struct {
	head  CommitID
	ids   []CommitID
	links []commitLink
	plain []bool
}

// chain returns the chain from head through the listing, made once per
// head; plain tells whether a record can go out as it is.
func (k *keptReader) chain(head CommitID, plain func(KV) bool) []CommitID {
	m := k.memo
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil || m.last.head != head {
		w := &chainWalk{head: head, ids: k.commitLinks.chain(head)}
		w.links = make([]commitLink, len(w.ids))
		w.plain = make([]bool, len(w.ids))
		for i, id := range w.ids {
			w.links[i] = k.commitLinks[id]
			w.plain[i] = plain(w.links[i].kv)
		}
		m.last = w
	}
	k.walk = m.last
	return k.walk.ids
}

// linkAt returns id's link and plainness from the walked chain when it
// is the next one there (a page's records are read in the chain's
// order), and whether it was.
func (k *keptReader) linkAt(id CommitID) (commitLink, bool, bool) {
	w := k.walk
	if w == nil || k.cur < 0 || k.cur >= len(w.ids) || w.ids[k.cur] != id {
		return commitLink{}, false, false
	}
	k.cur++
	return w.links[k.cur-1], w.plain[k.cur-1], true
}

func (p *pointLinks) link(id CommitID) (commitLink, bool, error) {
	if l, ok := p.got[id]; ok || p.listed {
		return l, ok, nil
	}
	kv, err := p.r.s.Get(p.ctx, commitKey(p.dot, id))
	if isNotFound(err) {
		return commitLink{}, false, nil
	}
	if err != nil {
		return commitLink{}, false, err
	}
	cid, parent, err := commitLinkOf(kv.Value)
	if err == nil && cid != id {
		err = fmt.Errorf("it holds commit %s", cid)
	}
	if err != nil {
		return commitLink{}, false, fmt.Errorf("%w: registry key %s: %v", ErrCorrupt, kv.Key, err)
	}
	l := commitLink{parent: parent, kv: kv}
	p.got[id] = l
	return l, true, nil
}

func (p *pointLinks) all() (commitLinks, error) {
	if !p.listed {
		ls, err := p.r.links(p.ctx, p.dot)
		if err != nil {
			return nil, err
		}
		p.got, p.listed = ls, true
	}
	return p.got, nil
}

// chainOf returns at most n ids (n <= 0: all) from head back along
// parents, in ancestry's order.
func chainOf(lr linkReader, head CommitID, n int) ([]CommitID, error) {
	var out []CommitID
	var err error
	walkParents(head, func(id CommitID) (CommitID, bool) {
		if n > 0 && len(out) >= n {
			return "", false
		}
		l, ok, lerr := lr.link(id)
		if lerr != nil {
			err = lerr
			return "", false
		}
		if ok {
			out = append(out, id)
		}
		return l.parent, ok
	})
	return out, err
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

// commitOf decodes commit id, which lr holds.
func (r registry) commitOf(lr linkReader, id CommitID) (*Commit, error) {
	l, _, err := lr.link(id)
	if err != nil {
		return nil, err
	}
	return r.cc.decode(l.kv)
}

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
	n.lists.start(n.store, n.log.Warn)
	lr, err := n.reg.historyReader(ctx, d.ID, skip+limit+1, b.Head)
	if err != nil {
		return nil, false, err
	}
	return n.reg.page(lr, b.Head, skip, limit)
}

// page returns limit commits of the first-parent history from head after
// skipping skip, whether older ones follow, and marks where a pruned
// history starts as markPruned does for Log. limit <= 0 means all.
func (r registry) page(lr linkReader, head CommitID, skip, limit int) ([]*Commit, bool, error) {
	ids, more, pruned, err := r.pageIDs(lr, head, skip, limit)
	if err != nil {
		return nil, false, err
	}
	out, err := r.commitsOf(lr, ids, pruned)
	return out, more, err
}

// commitsOf decodes the commits ids names, which lr holds, marking the
// last as starting a pruned history when pruned says so.
func (r registry) commitsOf(lr linkReader, ids []CommitID, pruned bool) ([]*Commit, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]*Commit, len(ids))
	for i, id := range ids {
		c, err := r.commitOf(lr, id)
		if err != nil {
			return nil, err
		}
		c.Pruned = pruned && i == len(ids)-1
		out[i] = c
	}
	return out, nil
}

// pageIDs returns the ids of page's commits, whether older ones follow,
// and whether the last one starts a pruned history (its parent is not
// here).
func (r registry) pageIDs(lr linkReader, head CommitID, skip, limit int) (ids []CommitID, more, pruned bool, err error) {
	n := 0
	if limit > 0 {
		n = skip + limit + 1 // one more tells whether more follow
	}
	kr, kept := lr.(*keptReader)
	if kept {
		ids = kr.chain(head, r.cc.plainRecord)
		if n > 0 && n < len(ids) {
			ids = ids[:n]
		}
		ids = slices.Clip(ids)
	} else if ids, err = chainOf(lr, head, n); err != nil {
		return nil, false, false, err
	}
	if skip >= len(ids) {
		return nil, false, false, nil
	}
	if limit <= 0 {
		limit = len(ids)
	}
	more = len(ids) > skip+limit
	ids = ids[skip:min(skip+limit, len(ids))]
	if kept {
		kr.cur = skip
	}
	if last := ids[len(ids)-1]; !more {
		l, _, err := lr.link(last)
		if err != nil {
			return nil, false, false, err
		}
		if l.parent != "" {
			_, has, err := lr.link(l.parent)
			if err != nil {
				return nil, false, false, err
			}
			pruned = !has
		}
	}
	return ids, more, pruned, nil
}

// records returns the JSON of the commits ids names, which lr holds: each
// record as stored where it is a Commit's encoding with the Pruned the
// page gives it (pruned: the last one's), else the commit encoded anew.
func (r registry) records(lr linkReader, ids []CommitID, pruned bool) ([]CommitJSON, error) {
	out := make([]CommitJSON, len(ids))
	kr, _ := lr.(*keptReader)
	for i, id := range ids {
		var l commitLink
		var plain, at bool
		if kr != nil {
			l, plain, at = kr.linkAt(id)
		}
		if !at {
			var err error
			if l, _, err = lr.link(id); err != nil {
				return nil, err
			}
		}
		last := pruned && i == len(ids)-1
		out[i].ID = id
		if !last && (plain || (!at && r.cc.plainRecord(l.kv))) {
			out[i].JSON = l.kv.Value
			continue
		}
		c, err := r.cc.decode(l.kv)
		if err != nil {
			return nil, err
		}
		c.Pruned = last
		out[i].JSON = encode(c)
	}
	return out, nil
}

// plainRecord tells whether a stored commit record can go out as it is:
// a valid JSON object of valid UTF-8 on one line (as encoding/json writes
// it) without a "pruned" key (which the page sets; the sequence can only
// be a key, since a quote inside a JSON string is escaped).
func plainRecord(v []byte) bool {
	return len(v) > 0 && v[0] == '{' && bytes.IndexByte(v, '\n') < 0 && !bytes.Contains(v, []byte(`"pruned"`)) && utf8.Valid(v) && json.Valid(v)
}

// history is History: the page of the first-parent history from the
// commit ref names (see resolve), HEAD being branch's head.
func (n *Node) history(ctx context.Context, dot DotName, branch, ref string, skip, limit int) ([]*Commit, bool, error) {
	lr, ids, more, pruned, err := n.historyIDs(ctx, dot, branch, ref, skip, limit)
	if err != nil || len(ids) == 0 {
		return nil, false, err
	}
	out, err := n.reg.commitsOf(lr, ids, pruned)
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// HistoryJSON is History with each commit as its JSON encoding, mostly
// the registry's record as stored: an API server answering a log of
// thousands of commits copies them rather than decoding and encoding
// each, which was most of the answer's time.
func (n *Node) HistoryJSON(ctx context.Context, dot DotName, branch, ref string, skip, limit int) ([]CommitJSON, bool, error) {
	lr, ids, more, pruned, err := n.historyIDs(ctx, dot, branch, ref, skip, limit)
	if err != nil || len(ids) == 0 {
		return nil, false, err
	}
	out, err := n.reg.records(lr, ids, pruned)
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// CommitJSON is a commit of HistoryJSON: its id and its JSON encoding,
// on one line (compact, as encoding/json writes it).
type CommitJSON struct {
	ID   CommitID
	JSON json.RawMessage
}

// historyIDs resolves a history page: the reader of the dot's records,
// the page's ids, whether older ones follow and whether the last starts
// a pruned history.
func (n *Node) historyIDs(ctx context.Context, dot DotName, branch, ref string, skip, limit int) (lr linkReader, ids []CommitID, more, pruned bool, err error) {
	if skip < 0 {
		return nil, nil, false, false, fmt.Errorf("%w: history skip %d: give skip >= 0", ErrInvalidArgument, skip)
	}
	if ref == "" {
		ref = "HEAD"
	}
	r, err := ParseRef(ref)
	if err != nil {
		return nil, nil, false, false, err
	}
	d, b, _, err := n.resolveBranch(ctx, dot, branch)
	if err != nil {
		return nil, nil, false, false, err
	}
	if r.Name == "" && r.Back == 0 && b.Head == "" {
		return nil, nil, false, false, nil // a branch without commits has an empty history
	}
	reads := 0 // a whole history, or a commit id prefix, is listed
	if limit > 0 && r.Prefix == "" {
		reads = r.Back + skip + limit + 1
	}
	n.lists.start(n.store, n.log.Warn)
	if lr, err = n.reg.historyReader(ctx, d.ID, reads, b.Head); err != nil {
		return nil, nil, false, false, err
	}
	start, err := n.resolveIn(ctx, d, b, r, lr)
	if err != nil {
		return nil, nil, false, false, err
	}
	ids, more, pruned, err = n.reg.pageIDs(lr, start.ID, skip, limit)
	return lr, ids, more, pruned, err
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
