package dotmesh

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// diffSide is one side of a comparison, opened: a commit (c), the
// working state of a branch (live), or nothing before a first commit.
type diffSide struct {
	DiffSide
	c    *Commit
	live bool
	tree *commitTree
	dbs  map[string]string // database subdots and their kinds
}

func (s *diffSide) close() {
	if s.tree != nil {
		s.tree.close()
	}
}

// openSide resolves ref on b (working state when live, empty side when
// c is nil and not live) and opens its tree and its database subdots.
func (n *Node) openSide(ctx context.Context, d *Dot, be StorageBackend, b *Branch, side DiffSide, c *Commit, live bool) (*diffSide, error) {
	s := &diffSide{DiffSide: side, c: c, live: live}
	var err error
	switch {
	case live:
		s.tree, err = openWorkingTree(ctx, be, b.Ref())
		if err != nil {
			err = fmt.Errorf("reading the working state of %s@%s: %w", d.DotName(), b.Name, err)
		}
	case c != nil:
		s.tree, err = n.openTree(ctx, d, be, c)
	default:
		s.tree = emptyTree()
	}
	if err != nil {
		return nil, err
	}
	if sd, ok := be.(SourceDiffer); ok && (live || c != nil) {
		if s.dbs, err = sd.DatabaseSubdots(ctx, b.Ref(), s.commitRef()); err != nil {
			s.close()
			return nil, fmt.Errorf("database subdots of %s: %w", d.DotName(), err)
		}
	}
	return s, nil
}

// openSides opens two sides at once: opening one is mostly waiting (for
// a mount, for the round trips of a walk through FUSE). The first error
// wins; whatever opened is closed then.
func openSides(openA, openB func() (*diffSide, error)) (*diffSide, *diffSide, error) {
	var a *diffSide
	var errA error
	done := make(chan struct{})
	go func() {
		defer close(done)
		a, errA = openA()
	}()
	b, errB := openB()
	<-done
	if errA == nil && errB == nil {
		return a, b, nil
	}
	for _, s := range []*diffSide{a, b} {
		if s != nil {
			s.close()
		}
	}
	if errA != nil {
		return nil, nil, errA
	}
	return nil, nil, errB
}

func (s *diffSide) commitRef() *CommitRef {
	if s.c == nil {
		return nil
	}
	return headRef(s.c)
}

// dbSide is s as a side of SourceDiffer.DiffDatabase for subdot.
func (s *diffSide) dbSide(b *Branch, subdot string) DatabaseSide {
	if _, ok := s.dbs[subdot]; !ok {
		return DatabaseSide{}
	}
	if s.live {
		r := b.Ref()
		return DatabaseSide{Live: &r}
	}
	return DatabaseSide{Commit: s.commitRef()}
}

// topDir is the subdot a tree path lies in (its first part).
func topDir(p string) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// underPath says whether tree path p is f or inside it ("" is the root).
func underPath(p, f string) bool {
	return f == "" || p == f || strings.HasPrefix(p, f+"/")
}

// validDiffOptions checks what Diff was given and fills the defaults.
func validDiffOptions(opts *DiffOptions) error {
	for _, v := range []struct {
		name string
		val  *int
		def  int
	}{{"context", &opts.Context, 3}, {"max rows", &opts.MaxRows, DefaultMaxRows}, {"max files", &opts.MaxFiles, DefaultMaxFiles}, {"max patch bytes", &opts.MaxPatchBytes, DefaultMaxPatchBytes}} {
		if *v.val < 0 {
			return fmt.Errorf("%w: %s %d is negative; give 0 for the default (%d) or a positive number", ErrInvalidArgument, v.name, *v.val, v.def)
		}
		if *v.val == 0 {
			*v.val = v.def
		}
	}
	if opts.Parent && (opts.To == "" || opts.From != "") {
		return fmt.Errorf("%w: comparing with the parent needs a commit to compare (to) and no old side (from)", ErrInvalidArgument)
	}
	for i, p := range opts.Paths {
		if p == RootSubdot {
			opts.Paths[i] = ""
			continue
		}
		if err := ValidateTreePath(p); err != nil {
			return err
		}
	}
	return nil
}

// pathFilter keeps the paths under one of paths (all when there are
// none), outside the database subdots dbs.
func pathFilter(paths []string, dbs map[string]string) func(string) bool {
	return func(p string) bool {
		if _, ok := dbs[topDir(p)]; ok {
			return false
		}
		if len(paths) == 0 {
			return true
		}
		for _, f := range paths {
			if underPath(p, f) {
				return true
			}
		}
		return false
	}
}

// checkPaths: every path filter names something on one side at least.
func checkPaths(dot DotName, paths []string, dbs map[string]string, trees ...*commitTree) error {
next:
	for _, f := range paths {
		if f == "" {
			continue
		}
		if _, ok := dbs[topDir(f)]; ok {
			continue
		}
		for _, t := range trees {
			if _, ok := t.index[f]; ok {
				continue next
			}
		}
		return &NotFoundError{Kind: "path", Name: f, Dot: dot}
	}
	return nil
}

// branchBackend resolves a branch (the current one when empty) and the
// backend holding its dot.
func (n *Node) branchBackend(ctx context.Context, dot DotName, branch string) (*Dot, *Branch, StorageBackend, error) {
	d, b, _, err := n.resolveBranch(ctx, dot, branch)
	if err != nil {
		return nil, nil, nil, err
	}
	be, err := n.backendOf(d)
	return d, b, be, err
}

// unionDBs maps the database subdots of either side to their kinds.
func unionDBs(a, b *diffSide) map[string]string {
	out := maps.Clone(a.dbs)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, b.dbs)
	return out
}

func (n *Node) diff(ctx context.Context, dot DotName, opts DiffOptions) (*Diff, error) {
	opts.Paths = append([]string(nil), opts.Paths...)
	if err := validDiffOptions(&opts); err != nil {
		return nil, err
	}
	d, b, be, err := n.branchBackend(ctx, dot, opts.Branch)
	if err != nil {
		return nil, err
	}
	out := &Diff{Dot: d.DotName(), Files: []FileDiff{}}

	var fc, tc *Commit
	if opts.To == "" {
		out.To.Branch = b.Name
	} else {
		if tc, err = n.resolve(ctx, d, b, opts.To); err != nil {
			return nil, err
		}
		out.To.Ref, out.To.Commit = opts.To, tc.ID
	}
	switch {
	case opts.Parent:
		// The parent, or nothing when there is none on this node.
		if tc.Parent != "" {
			if fc, err = n.reg.commit(ctx, d.ID, tc.Parent); err != nil {
				return nil, err
			}
		}
		if fc != nil {
			out.From.Ref, out.From.Commit = opts.To+"^", fc.ID
		}
	default:
		// The old side: HEAD by default, nothing before the first commit.
		out.From.Ref = opts.From
		if out.From.Ref == "" {
			out.From.Ref = "HEAD"
		}
		if opts.From != "" || b.Head != "" {
			if fc, err = n.resolve(ctx, d, b, out.From.Ref); err != nil {
				return nil, err
			}
			out.From.Commit = fc.ID
		}
	}
	from, to, err := openSides(
		func() (*diffSide, error) { return n.openSide(ctx, d, be, b, out.From, fc, false) },
		func() (*diffSide, error) { return n.openSide(ctx, d, be, b, out.To, tc, opts.To == "") })
	if err != nil {
		return nil, err
	}
	defer from.close()
	defer to.close()
	var live *Branch
	if opts.To == "" {
		live = b
	}
	if err := n.proveByInodes(ctx, d, be, from.tree, to.tree, fc, tc, live); err != nil {
		return nil, err
	}

	dbs := unionDBs(from, to)
	if err := checkPaths(out.Dot, opts.Paths, dbs, from.tree, to.tree); err != nil {
		return nil, err
	}
	err = compareTrees(ctx, from.tree, to.tree, pathFilter(opts.Paths, dbs), func(ch treeChange) (bool, error) {
		fd, err := fileDiff(from.tree, to.tree, ch, &opts)
		if err != nil {
			return false, fmt.Errorf("comparing %s: %w", ch.path(), err)
		}
		out.Stat.add(fd)
		if len(out.Files) < opts.MaxFiles {
			out.Files = append(out.Files, fd)
		} else {
			out.FilesTruncated = true
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if sd, ok := be.(SourceDiffer); ok {
		rows := RowDiffOptions{Rows: opts.Rows}
		if opts.Rows {
			rows.MaxRows = opts.MaxRows
		}
		for _, s := range slices.Sorted(maps.Keys(dbs)) {
			if !dbSelected(s, opts.Paths) {
				continue
			}
			dd, err := sd.DiffDatabase(ctx, s, from.dbSide(b, s), to.dbSide(b, s), rows)
			if err != nil {
				return nil, fmt.Errorf("comparing database subdot %s of %s: %w", s, out.Dot, err)
			}
			if dd.Changed {
				out.Databases = append(out.Databases, *dd)
				out.Stat.Databases++
			}
		}
	}
	return out, nil
}

// dbSelected says whether the path filters select database subdot s.
func dbSelected(s string, paths []string) bool {
	if len(paths) == 0 {
		return true
	}
	for _, f := range paths {
		if f == "" || topDir(f) == s {
			return true
		}
	}
	return false
}

// add counts one changed path.
func (st *DiffStat) add(fd FileDiff) {
	switch fd.Kind {
	case ChangeAdded:
		st.Added++
	case ChangeRemoved:
		st.Removed++
	case ChangeModified:
		st.Modified++
	case ChangeTypeChanged:
		st.TypeChanged++
	}
	if d := fd.NewSize - fd.OldSize; d > 0 {
		st.BytesAdded += d
	} else {
		st.BytesRemoved -= d
	}
	st.Insertions += fd.Insertions
	st.Deletions += fd.Deletions
}

// fileDiff describes one change, with its patch when opts ask for it.
func fileDiff(a, b *commitTree, ch treeChange, opts *DiffOptions) (FileDiff, error) {
	fd := FileDiff{Path: ch.path(), Kind: ch.kind}
	var oldText, newText []byte
	hasOld, hasNew := false, false
	if e := ch.old; e != nil {
		fd.OldMode, fd.OldTarget = e.Mode, e.Target
		if e.Mode.IsRegular() {
			fd.OldSize, hasOld = e.Size, true
		}
	}
	if e := ch.new; e != nil {
		fd.NewMode, fd.NewTarget = e.Mode, e.Target
		if e.Mode.IsRegular() {
			fd.NewSize, hasNew = e.Size, true
		}
	}
	// Without content nothing is read: sizes and kinds come from the
	// trees (the dump manifests), which is what keeps --stat cheap.
	if !hasOld && !hasNew || ch.kind == ChangeTypeChanged || !opts.Content {
		return fd, nil
	}
	sniff := int64(maxPatchInput)
	var cutOld, cutNew bool
	var err error
	if hasOld && fd.OldSize > 0 {
		if oldText, cutOld, err = a.read(fd.Path, sniff); err != nil {
			return fd, err
		}
	}
	if hasNew && fd.NewSize > 0 {
		if newText, cutNew, err = b.read(fd.Path, sniff); err != nil {
			return fd, err
		}
	}
	fd.Binary = isBinary(oldText) || isBinary(newText)
	if fd.Binary {
		return fd, nil
	}
	if cutOld || cutNew {
		fd.PatchTruncated = true
		return fd, nil
	}
	p, err := unifiedPatch(fd.Path, oldText, newText, hasOld, hasNew, opts.Context, opts.MaxPatchBytes)
	if err != nil {
		return fd, err
	}
	fd.Patch, fd.Insertions, fd.Deletions, fd.PatchTruncated = p.text, p.insertions, p.deletions, p.truncated
	return fd, nil
}

func (n *Node) workingStatus(ctx context.Context, dot DotName, opts StatusOptions) (*Status, error) {
	d, b, be, err := n.branchBackend(ctx, dot, opts.Branch)
	if err != nil {
		return nil, err
	}
	st := &Status{Dot: d.DotName(), Branch: b.Name, Head: b.Head, Clean: true, Subdots: []SubdotStatus{}}
	var hc *Commit
	if b.Head != "" {
		if hc, err = n.reg.commit(ctx, d.ID, b.Head); err != nil {
			return nil, err
		}
		if hc == nil {
			return nil, &NotFoundError{Kind: KindCommit, Name: string(b.Head), Dot: st.Dot}
		}
	}
	head, work, err := openSides(
		func() (*diffSide, error) {
			return n.openSide(ctx, d, be, b, DiffSide{Ref: "HEAD", Commit: b.Head}, hc, false)
		},
		func() (*diffSide, error) { return n.openSide(ctx, d, be, b, DiffSide{Branch: b.Name}, nil, true) })
	if err != nil {
		return nil, err
	}
	defer head.close()
	defer work.close()

	if err := n.proveByInodes(ctx, d, be, head.tree, work.tree, hc, nil, b); err != nil {
		return nil, err
	}

	// Every top-level directory of either side is a subdot; files at the
	// top of the tree belong to RootSubdot.
	subs := map[string]*SubdotStatus{}
	sub := func(name, kind string) *SubdotStatus {
		s := subs[name]
		if s == nil {
			s = &SubdotStatus{Subdot: name, Kind: kind}
			subs[name] = s
		}
		return s
	}
	for _, t := range []*commitTree{head.tree, work.tree} {
		for _, e := range t.entries {
			if !strings.Contains(e.Path, "/") && e.Mode.IsDir() {
				sub(e.Path, "files")
			}
		}
	}
	dbs := unionDBs(head, work)
	err = compareTrees(ctx, head.tree, work.tree, pathFilter(nil, dbs), func(ch treeChange) (bool, error) {
		fd, err := fileDiff(head.tree, work.tree, ch, &DiffOptions{})
		if err != nil {
			return false, fmt.Errorf("comparing %s: %w", ch.path(), err)
		}
		name := topDir(fd.Path)
		if name == fd.Path && !(fd.NewMode.IsDir() || fd.OldMode.IsDir()) {
			name = RootSubdot
		}
		s := sub(name, "files")
		s.Changed = true
		s.Files = append(s.Files, fd)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if sd, ok := be.(SourceDiffer); ok {
		for _, name := range slices.Sorted(maps.Keys(dbs)) {
			s := sub(name, dbs[name])
			s.Kind, s.Files = dbs[name], nil
			dd := &DatabaseDiff{Subdot: name, Kind: s.Kind, Changed: true}
			_, inHead := head.dbs[name]
			_, inWork := work.dbs[name]
			switch {
			case opts.Rows:
				dd, err = sd.DiffDatabase(ctx, name, head.dbSide(b, name), work.dbSide(b, name), RowDiffOptions{Rows: true})
			case inHead && inWork:
				dd.Changed, err = sd.SourceChanged(ctx, b.Ref(), name, hc.Ref())
			}
			if err != nil {
				return nil, fmt.Errorf("comparing database subdot %s of %s: %w", name, st.Dot, err)
			}
			s.Changed, s.Database = dd.Changed, dd
		}
	}
	for _, name := range slices.Sorted(maps.Keys(subs)) {
		s := subs[name]
		st.Clean = st.Clean && !s.Changed
		st.Subdots = append(st.Subdots, *s)
	}
	return st, nil
}
