package cli

import (
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// How much of a value or a schema definition a row line shows.
const (
	maxValueChars  = 60
	maxSchemaChars = 120
)

// ANSI colours of the patch output, as git uses them.
const (
	ansiBold  = "\x1b[1m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiCyan  = "\x1b[36m"
	ansiReset = "\x1b[m"
)

// painter colours lines when on.
type painter bool

func (p painter) paint(colour, s string) string {
	if !p || s == "" {
		return s
	}
	return colour + s + ansiReset
}

// writeDiff prints d in the output the flags chose.
func (a *app) writeDiff(d *dotmesh.Diff, f *diffFlags) error {
	w := a.out()
	switch {
	case f.nameStatus:
		writeNameStatus(w, d)
	case f.stat && a.scripting:
		writeNumstat(w, d, f.lines)
	case f.stat:
		writeStat(w, d, f.lines)
	default:
		writePatches(w, d, painter(a.useColor(f.color)))
	}
	if d.FilesTruncated {
		fmt.Fprintf(a.io.Stderr, "dm: warning: only the first %d changed paths are listed (%d in all); narrow the diff with -- PATH\n", len(d.Files), changedFiles(d.Stat))
	}
	return nil
}

// writeShow prints a commit the way git show does: its header, then its
// diff against its parent (against nothing for a first commit).
func (a *app) writeShow(cm *dotmesh.Commit, d *dotmesh.Diff, f *diffFlags) error {
	w := a.out()
	p := painter(a.useColor(f.color))
	fmt.Fprintln(w, p.paint("\x1b[33m", "commit "+string(cm.ID)))
	fmt.Fprintf(w, "Author: %s\n", printable(cm.Author))
	fmt.Fprintf(w, "Date:   %s\n", cm.Time.Local().Format("Mon Jan 2 15:04:05 2006 -0700"))
	if cm.Parent != "" {
		fmt.Fprintf(w, "Parent: %s\n", cm.Parent)
	}
	fmt.Fprintf(w, "Branch: %s\n", printable(cm.Branch))
	if cw := consistencyWords(cm); cw != "" {
		fmt.Fprintf(w, "State:  %s\n", cw)
	}
	for _, k := range sortedKeys(cm.Metadata) {
		fmt.Fprintf(w, "Meta:   %s=%s\n", k, printable(cm.Metadata[k]))
	}
	for _, k := range sortedKeys(cm.Info) {
		fmt.Fprintf(w, "Info:   %s=%s\n", k, printable(cm.Info[k]))
	}
	fmt.Fprintln(w)
	for _, l := range strings.Split(strings.TrimRight(cm.Message, "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", printable(l))
	}
	if cm.Parent != "" && d.From.Commit == "" {
		fmt.Fprintf(w, "\nHistory pruned here: parent %s is not on this node; everything in this commit is shown as added.\n", cm.Parent)
	}
	if hasChanges(d) {
		fmt.Fprintln(w)
	}
	return a.writeDiff(d, f)
}

// changedFiles counts every changed path of a stat.
func changedFiles(s dotmesh.DiffStat) int { return s.Added + s.Removed + s.Modified + s.TypeChanged }

// letter is git's name-status letter of a change kind.
func letter(kind string) string {
	switch kind {
	case dotmesh.ChangeAdded:
		return "A"
	case dotmesh.ChangeRemoved:
		return "D"
	case dotmesh.ChangeTypeChanged:
		return "T"
	}
	return "M"
}

// displayPath is a path as listed: directories end in '/'.
func displayPath(fd dotmesh.FileDiff) string {
	if isDirChange(fd) {
		return fd.Path + "/"
	}
	return fd.Path
}

// isDirChange says whether a change is of a directory on the side that
// has one (the new side unless it was removed).
func isDirChange(fd dotmesh.FileDiff) bool {
	m := fd.NewMode
	if fd.Kind == dotmesh.ChangeRemoved {
		m = fd.OldMode
	}
	return m.IsDir()
}

func writeNameStatus(w io.Writer, d *dotmesh.Diff) {
	for _, fd := range d.Files {
		fmt.Fprintf(w, "%s\t%s\n", letter(fd.Kind), scriptField(displayPath(fd)))
	}
	for _, db := range d.Databases {
		if db.Changed {
			fmt.Fprintf(w, "M\t%s/\n", scriptField(db.Subdot))
		}
	}
}

// writeNumstat is --stat for scripts: old size, new size and path per
// file, or with lines insertions, deletions and path ("-" for binary
// files); per database table, "table", subdot, table, inserted, deleted,
// updated; a changed database without row counts is "database", subdot,
// kind.
func writeNumstat(w io.Writer, d *dotmesh.Diff, lines bool) {
	for _, fd := range d.Files {
		switch {
		case !lines:
			fmt.Fprintf(w, "%d\t%d\t%s\n", fd.OldSize, fd.NewSize, scriptField(displayPath(fd)))
			continue
		case fd.Binary:
			fmt.Fprintf(w, "-\t-\t%s\n", scriptField(displayPath(fd)))
			continue
		}
		fmt.Fprintf(w, "%d\t%d\t%s\n", fd.Insertions, fd.Deletions, scriptField(displayPath(fd)))
	}
	for _, db := range d.Databases {
		if len(db.Tables) == 0 && len(db.Schema) == 0 {
			fmt.Fprintf(w, "database\t%s\t%s\n", scriptField(db.Subdot), scriptField(db.Kind))
		}
		for _, t := range db.Tables {
			fmt.Fprintf(w, "table\t%s\t%s\t%d\t%d\t%d\n", scriptField(db.Subdot), scriptField(t.Table), t.Inserted, t.Deleted, t.Updated)
		}
		if len(db.Tables) == 0 && len(db.Schema) > 0 {
			fmt.Fprintf(w, "schema\t%s\t%d\n", scriptField(db.Subdot), len(db.Schema))
		}
	}
}

// statWidth is the width git's --stat fills.
const statWidth = 80

// writeStat prints git's --stat: a line per path with its sizes, or with
// countLines its count of changed lines and a bar of +/-; a line per changed
// database, then the summary.
func writeStat(w io.Writer, d *dotmesh.Diff, countLines bool) {
	type line struct {
		name, count string
		fd          *dotmesh.FileDiff // a text file's, which gets a bar
	}
	var rows []line
	maxChange := 0
	for i, fd := range d.Files {
		l := line{name: printable(displayPath(fd))}
		switch {
		case fd.Binary:
			l.count = fmt.Sprintf("Bin %d -> %d bytes", fd.OldSize, fd.NewSize)
		case !countLines:
			l.count = sizeStat(fd)
		default:
			l.count, l.fd = strconv.Itoa(fd.Insertions+fd.Deletions), &d.Files[i]
			maxChange = max(maxChange, fd.Insertions+fd.Deletions)
		}
		rows = append(rows, l)
	}
	for _, db := range d.Databases {
		if db.Changed {
			rows = append(rows, line{name: printable(db.Subdot) + "/", count: dbSummary(db)})
		}
	}
	if len(rows) == 0 {
		return
	}
	nameW, countW := 0, 0
	for _, l := range rows {
		nameW = max(nameW, len([]rune(l.name)))
		if l.fd != nil {
			countW = max(countW, len(l.count))
		}
	}
	nameW = min(nameW, 50)
	barW := max(10, statWidth-nameW-countW-5)
	for _, l := range rows {
		name := l.name
		if r := []rune(name); len(r) > nameW {
			name = "..." + string(r[len(r)-nameW+3:])
		}
		if l.fd == nil {
			fmt.Fprintf(w, " %-*s | %s\n", nameW, name, l.count)
			continue
		}
		ins, del := scaleBar(l.fd.Insertions, l.fd.Deletions, maxChange, barW)
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf(" %-*s | %*s %s%s", nameW, name, countW, l.count, strings.Repeat("+", ins), strings.Repeat("-", del)), " "))
	}
	fmt.Fprintln(w, statSummary(d.Stat, countLines))
}

// sizeStat is a path's --stat entry without line counts.
func sizeStat(fd dotmesh.FileDiff) string {
	switch {
	case isDirChange(fd):
		return "directory"
	case fd.OldMode&fs.ModeSymlink != 0 || fd.NewMode&fs.ModeSymlink != 0:
		if fd.Kind == dotmesh.ChangeTypeChanged {
			return "type changed"
		}
		return "symlink"
	}
	return fmt.Sprintf("%d -> %d bytes", fd.OldSize, fd.NewSize)
}

// scaleBar shrinks a file's +/- bar to width when the largest change
// would not fit, keeping at least one sign for each non-zero side.
func scaleBar(ins, del, largest, width int) (int, int) {
	if largest <= width {
		return ins, del
	}
	scale := func(n int) int {
		if n == 0 {
			return 0
		}
		return max(1, n*width/largest)
	}
	return scale(ins), scale(del)
}

// statSummary is git's summary line, with the changed databases; without
// lines, the bytes added and removed.
func statSummary(s dotmesh.DiffStat, lines bool) string {
	n := changedFiles(s)
	out := fmt.Sprintf(" %d %s changed", n, plural(n, "file", "files"))
	switch {
	case !lines:
		out += fmt.Sprintf(", %s added(+), %s removed(-)", HumanSize(s.BytesAdded), HumanSize(s.BytesRemoved))
	case s.Insertions > 0 || s.Deletions == 0:
		out += fmt.Sprintf(", %d %s(+)", s.Insertions, plural(s.Insertions, "insertion", "insertions"))
	}
	if lines && (s.Deletions > 0 || s.Insertions == 0) {
		out += fmt.Sprintf(", %d %s(-)", s.Deletions, plural(s.Deletions, "deletion", "deletions"))
	}
	if s.Databases > 0 {
		out += fmt.Sprintf(", %d %s changed", s.Databases, plural(s.Databases, "database", "databases"))
	}
	return out
}

// dbSummary sums a database's changes in one phrase: "+3 -1 ~2 rows in
// 2 tables, 1 schema change (postgresql)".
func dbSummary(db dotmesh.DatabaseDiff) string {
	var ins, del, upd int64
	for _, t := range db.Tables {
		ins, del, upd = ins+t.Inserted, del+t.Deleted, upd+t.Updated
	}
	var parts []string
	if len(db.Tables) > 0 {
		parts = append(parts, fmt.Sprintf("+%d -%d ~%d rows in %d %s", ins, del, upd, len(db.Tables), plural(len(db.Tables), "table", "tables")))
	}
	if len(db.Schema) > 0 {
		parts = append(parts, fmt.Sprintf("%d schema %s", len(db.Schema), plural(len(db.Schema), "change", "changes")))
	}
	if len(parts) == 0 {
		parts = append(parts, "changed")
	}
	return strings.Join(parts, ", ") + " (" + printable(db.Kind) + ")"
}

// gitMode renders a mode as git's diff headers do, with the permission
// bits dotmesh keeps: 100644, 100755, 120000 (symlink), 040755 (dir).
func gitMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "120000"
	case m.IsDir():
		return fmt.Sprintf("040%03o", m.Perm())
	}
	return fmt.Sprintf("100%03o", m.Perm())
}

// writePatches prints each changed path as git's unified diff does, then
// each changed database.
func writePatches(w io.Writer, d *dotmesh.Diff, p painter) {
	for _, fd := range d.Files {
		writePatch(w, fd, p)
	}
	for _, db := range d.Databases {
		writeDatabase(w, db, p)
	}
}

func writePatch(w io.Writer, fd dotmesh.FileDiff, p painter) {
	path := printable(displayPath(fd))
	fmt.Fprintln(w, p.paint(ansiBold, "diff --dm a/"+path+" b/"+path))
	kind := "file"
	if isDirChange(fd) {
		kind = "directory"
	}
	switch fd.Kind {
	case dotmesh.ChangeAdded:
		fmt.Fprintln(w, p.paint(ansiBold, "new "+kind+" mode "+gitMode(fd.NewMode)))
	case dotmesh.ChangeRemoved:
		fmt.Fprintln(w, p.paint(ansiBold, "deleted "+kind+" mode "+gitMode(fd.OldMode)))
	default:
		if fd.OldMode != fd.NewMode {
			fmt.Fprintln(w, p.paint(ansiBold, "old mode "+gitMode(fd.OldMode)))
			fmt.Fprintln(w, p.paint(ansiBold, "new mode "+gitMode(fd.NewMode)))
		}
	}
	oldName, newName := "a/"+path, "b/"+path
	switch fd.Kind {
	case dotmesh.ChangeAdded:
		oldName = "/dev/null"
	case dotmesh.ChangeRemoved:
		newName = "/dev/null"
	}
	switch {
	case fd.Binary:
		fmt.Fprintf(w, "Binary files %s and %s differ (%d -> %d bytes)\n", oldName, newName, fd.OldSize, fd.NewSize)
	case fd.Patch != "":
		writePatchText(w, fd.Patch, p)
		if fd.PatchTruncated {
			fmt.Fprintln(w, `\ patch cut here: the file differs further (the node's limit of patch bytes)`)
		}
	case fd.OldTarget != fd.NewTarget:
		// A symlink's target as git shows it: a one-line file.
		writePatchText(w, symlinkPatch(oldName, newName, fd.OldTarget, fd.NewTarget), p)
	}
}

// symlinkPatch is the patch of a symlink retargeted, added or removed.
func symlinkPatch(oldName, newName, oldTarget, newTarget string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s\n+++ %s\n", oldName, newName)
	oldN, newN := "1", "1"
	if oldTarget == "" {
		oldN = "0,0"
	}
	if newTarget == "" {
		newN = "0,0"
	}
	fmt.Fprintf(&b, "@@ -%s +%s @@\n", oldN, newN)
	if oldTarget != "" {
		fmt.Fprintf(&b, "-%s\n\\ No newline at end of file\n", oldTarget)
	}
	if newTarget != "" {
		fmt.Fprintf(&b, "+%s\n\\ No newline at end of file\n", newTarget)
	}
	return b.String()
}

// writePatchText prints a unified diff line by line, its two header
// lines bold, hunk headers cyan, insertions green, deletions red.
func writePatchText(w io.Writer, patch string, p painter) {
	lines := strings.Split(strings.TrimSuffix(patch, "\n"), "\n")
	for i, l := range lines {
		l = visible(l)
		colour := ""
		switch {
		case i < 2 && (strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "+++ ")):
			colour = ansiBold
		case strings.HasPrefix(l, "@@"):
			colour = ansiCyan
		case strings.HasPrefix(l, "+"):
			colour = ansiGreen
		case strings.HasPrefix(l, "-"):
			colour = ansiRed
		}
		fmt.Fprintln(w, p.paint(colour, l))
	}
}

// visible keeps tabs but replaces the other control characters of file
// contents, which could otherwise drive the terminal.
func visible(s string) string {
	return strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// writeDatabase prints a changed database subdot: its schema changes,
// then per table the counts and the rows listed.
func writeDatabase(w io.Writer, db dotmesh.DatabaseDiff, p painter) {
	if !db.Changed {
		return
	}
	sub := printable(db.Subdot)
	fmt.Fprintln(w, p.paint(ansiBold, fmt.Sprintf("diff --dm a/%s/ b/%s/ (%s database)", sub, sub, printable(db.Kind))))
	if len(db.Schema) == 0 && len(db.Tables) == 0 {
		fmt.Fprintln(w, "changed (rows not compared: --no-rows)")
		return
	}
	if len(db.Schema) > 0 {
		fmt.Fprintln(w, "schema:")
		for _, s := range db.Schema {
			fmt.Fprintln(w, schemaLine(s, p))
		}
	}
	for _, t := range db.Tables {
		key := ""
		if len(t.Key) > 0 {
			key = " (key " + printable(strings.Join(t.Key, ", ")) + ")"
		} else {
			key = " (no primary key: compared as rows)"
		}
		fmt.Fprintln(w, p.paint(ansiCyan, fmt.Sprintf("table %s%s: +%d -%d ~%d rows", printable(t.Table), key, t.Inserted, t.Deleted, t.Updated)))
		for _, r := range t.Rows {
			fmt.Fprintln(w, rowLine(t, r, p))
		}
		if more := t.Inserted + t.Deleted + t.Updated - int64(len(t.Rows)); t.RowsTruncated || more > 0 {
			if more > 0 {
				fmt.Fprintf(w, "  ... %d more (--max-rows N lists more)\n", more)
			} else {
				fmt.Fprintln(w, "  ... more (--max-rows N lists more)")
			}
		}
	}
}

// schemaLine is one schema change: "+ table orders", "~ column
// accounts.balance: integer -> bigint".
func schemaLine(s dotmesh.SchemaChange, p painter) string {
	name := s.Name
	if s.Table != "" && s.Object != "table" {
		name = s.Table + "." + s.Name
	}
	line := s.Object + " " + name
	switch s.Kind {
	case dotmesh.SchemaAdded:
		if s.New != "" {
			line += ": " + clip(s.New, maxSchemaChars)
		}
		return p.paint(ansiGreen, "  + "+printable(line))
	case dotmesh.SchemaDropped:
		return p.paint(ansiRed, "  - "+printable(line))
	}
	if s.Old != "" || s.New != "" {
		line += ": " + clip(s.Old, maxSchemaChars) + " -> " + clip(s.New, maxSchemaChars)
	}
	return "  ~ " + printable(line)
}

// rowLine is one row change: "+ (key) values", "- (key) values",
// "~ (key) column: old -> new, ...".
func rowLine(t dotmesh.TableDiff, r dotmesh.RowChange, p painter) string {
	key := ""
	if len(r.Key) > 0 {
		key = "(" + clipAll(r.Key) + ") "
	}
	switch r.Kind {
	case dotmesh.RowInserted:
		return p.paint(ansiGreen, "  + "+printable(key+clipAll(r.New)))
	case dotmesh.RowDeleted:
		return p.paint(ansiRed, "  - "+printable(key+clipAll(r.Old)))
	}
	var changes []string
	for _, col := range r.Changed {
		i := indexOf(t.Columns, col)
		if i < 0 || i >= len(r.Old) || i >= len(r.New) {
			changes = append(changes, col)
			continue
		}
		changes = append(changes, col+": "+clip(r.Old[i], maxValueChars)+" -> "+clip(r.New[i], maxValueChars))
	}
	return "  ~ " + printable(key+strings.Join(changes, ", "))
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// clipAll joins values, each clipped.
func clipAll(vs []string) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = clip(v, maxValueChars)
	}
	return strings.Join(out, ", ")
}

// clip shortens s to n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
