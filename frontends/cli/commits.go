package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) commitCmd() *cobra.Command {
	var (
		dot, message string
		meta         []string
		allowEmpty   bool
		sel          selection
	)
	c := &cobra.Command{
		Use:   "commit -m MESSAGE [-d KEY=VALUE ...] [--allow-empty]",
		Short: "Commit the state of every subdot of the current branch",
		Long: `Record the current state of all subdots of the dot's current branch as
one atomic commit, with a message and optional key=value metadata.

Metadata keys follow the name rules (letters, digits, '_' and '-'); values
are free text. The commit id is printed.

When nothing changed since the branch's head (or, before the first commit,
the dot holds no file), there is nothing to commit: dm commit says so and
exits with the status of a conflict (5), as git refuses an empty commit;
--allow-empty commits anyway. With --all, an unchanged dot is skipped
(and said so), not a failure.

The dot's hooks (dm hook) run on its node around the commit: a failing
pre-commit or quiesce hook refuses it, exit 11. Each commit records the
consistency it achieved (crash-consistent, application-consistent,
logical, file-by-file), which dm log and dm show print.` + allHelp,
		Example: `  dm commit -m "seed data"
  dm commit -m "after migration 42" -d ci=1 -d build=1234
  dm commit --dot app -m nightly -H
  dm commit -m "mark the release" --allow-empty
  dm commit --all -m "before the upgrade"
  dm commit --all --label app=shop -m nightly`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(message) == "" {
				return fmt.Errorf("%w: a commit needs a message: -m MESSAGE", dotmesh.ErrInvalidArgument)
			}
			md, err := ParseMetadata(meta)
			if err != nil {
				return err
			}
			if chosen, err := sel.check(dot, 0); err != nil || sel.all {
				if err != nil {
					return err
				}
				return a.commitAll(cmd, chosen, api.CommitRequest{Message: message, Metadata: md, AllowEmpty: allowEmpty})
			}
			s, name, err := a.connectDot(dot)
			if err != nil {
				return err
			}
			cm, err := withProgress(a, cmd.Context(), "commit", func(ctx context.Context) (*dotmesh.Commit, error) {
				return s.c.CommitWith(ctx, name, api.CommitRequest{Message: message, Metadata: md, AllowEmpty: allowEmpty})
			})
			if err != nil {
				return s.wrap(err)
			}
			switch {
			case a.jsonOut:
				return writeJSON(a.out(), commitJSON(cm))
			case a.scripting:
				_, err = fmt.Fprintln(a.out(), cm.ID)
				return err
			}
			_, err = fmt.Fprintf(a.out(), "[%s@%s %s] %s\n", name, cm.Branch, shortID(string(cm.ID)), printable(firstLine(cm.Message)))
			return err
		},
	}
	f := c.Flags()
	f.StringVarP(&message, "message", "m", "", "commit `MESSAGE` (required)")
	f.StringArrayVarP(&meta, "metadata", "d", nil, "metadata `KEY=VALUE`; repeatable")
	f.StringVar(&dot, "dot", "", "commit `DOT` instead of the current dot")
	f.BoolVar(&allowEmpty, "allow-empty", false, "commit even when nothing changed since the head")
	selectionFlags(c, &sel)
	return c
}

func (a *app) logCmd() *cobra.Command {
	var (
		dot, branch string
		limit       int
	)
	c := &cobra.Command{
		Use:   "log [REF] | log --remote BUCKET DOT [REF]",
		Short: "Show the commits of the current branch, or of REF, newest first",
		Long: `Show the history of the dot's current branch (or --branch), newest first:
commit id, author, date, metadata and message. With REF, show the history
from the commit REF names instead: a branch (its head), a tag, a commit id
or prefix, HEAD of --branch, each optionally followed by ^, ^^ or ~N.

Like git log --decorate, a commit that is a branch's head or is tagged
shows them after its id: (HEAD -> master, feature, tag: v1), HEAD marking
the dot's current branch ("refs" with --json). Where gc removed the older
history (here, or on the node it came from), the oldest commit shown is
marked "(pruned)" (as git's "grafted"; "pruned": true with --json).

With -H, one commit per line: id, author, time (RFC 3339), message (first
line) and metadata as key=value separated by spaces.

With --remote naming a bucket remote, show what the bucket holds of a dot
instead: ` + "`dm log --remote NAME DOT [REF]`" + ` (REF as above, default --branch,
else master), read by dm itself without a node.`,
		Example: `  dm log
  dm log feature
  dm log v1~2
  dm log -n 5 --dot app --branch feature
  dm log --json
  dm log --remote backup app
  dm log --remote backup app v1`,
		Args: usageArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dot != "" {
				if _, err := parseDotName(dot); err != nil {
					return err
				}
			}
			if branch != "" {
				if err := validateBranch(branch); err != nil {
					return err
				}
			}
			if limit < 0 {
				return fmt.Errorf("%w: -n must not be negative", dotmesh.ErrInvalidArgument)
			}
			bname, b, err := a.bucketArg(nil)
			if err != nil {
				return err
			}
			if b != nil {
				return a.logBucketArgs(cmd, bname, b, dot, branch, args, limit)
			}
			if len(args) > 1 {
				return kinded(errUsage, fmt.Errorf("usage: %s (DOT [REF] with --remote naming a bucket remote)", cmd.UseLine()))
			}
			ref := ""
			if len(args) == 1 {
				if err := validateRef(args[0]); err != nil {
					return err
				}
				ref = args[0]
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			name, err := s.currentDot(dot)
			if err != nil {
				return err
			}
			fewerGCs()
			if !a.jsonOut && !a.scripting {
				return a.streamLog(cmd.Context(), s, name, branch, ref, limit)
			}
			var page *api.HistoryPage
			if a.jsonOut { // every commit whole
				page, err = s.c.History(cmd.Context(), name, branch, ref, 0, limit)
			} else { // -H shows no Info
				page, err = s.c.HistoryInfo(cmd.Context(), name, branch, ref, 0, limit, func(string) bool { return false })
			}
			if err != nil {
				return s.wrap(err)
			}
			commits := page.Commits
			if commits == nil {
				commits = []dotmesh.Commit{}
			}
			current := page.Current
			if !a.scripting {
				if current, err = pageCurrent(cmd.Context(), s, name, page); err != nil {
					return s.wrap(err)
				}
			}
			return a.writeCommits(commits, decorations(page.Refs, current))
		},
	}
	f := c.Flags()
	f.StringVar(&dot, "dot", "", "show `DOT` instead of the current dot")
	f.StringVar(&branch, "branch", "", "show `BRANCH` instead of the dot's current branch")
	f.IntVarP(&limit, "max-count", "n", 0, "show at most `N` commits (0: all)")
	a.passwordFileFlag(c)
	return c
}

// logBucketArgs is `dm log --remote BUCKET DOT [REF]` (or --dot DOT [REF]).
func (a *app) logBucketArgs(cmd *cobra.Command, name string, b *BucketRemote, dot, branch string, args []string, limit int) error {
	if dot == "" {
		if len(args) == 0 {
			return kinded(errUsage, fmt.Errorf("usage: dm log --remote %s DOT [REF]: name the dot (`dm list %s` shows them)", name, name))
		}
		dot, args = args[0], args[1:]
	}
	if len(args) > 1 {
		return kinded(errUsage, fmt.Errorf("usage: dm log --remote %s DOT [REF]", name))
	}
	d, err := parseDotName(dot)
	if err != nil {
		return err
	}
	if d.Namespace == "" {
		d.Namespace = dotmesh.DefaultNamespace
	}
	ref := branch
	if len(args) == 1 {
		if err := validateRef(args[0]); err != nil {
			return err
		}
		ref = args[0]
	}
	if ref == "" {
		ref = dotmesh.DefaultBranch
	}
	return a.logBucket(cmd.Context(), name, b, d, ref, limit)
}

// writeCommits prints a log: as JSON, tab-separated, or as git log does
// with the branches and tags at each commit.
func (a *app) writeCommits(commits []dotmesh.Commit, refs map[dotmesh.CommitID][]string) error {
	switch {
	case a.jsonOut:
		items := make([]logItem, len(commits))
		for i := range commits {
			items[i] = logItem{jsonCommit: commitJSON(&commits[i]), Refs: refs[commits[i].ID]}
		}
		return writeJSON(a.out(), items)
	case a.scripting:
		t := &table{scripting: true}
		for _, c := range commits {
			var md []string
			for _, k := range sortedKeys(c.Metadata) {
				md = append(md, k+"="+c.Metadata[k])
			}
			t.add(string(c.ID), c.Author, c.Time.Format(time.RFC3339), firstLine(c.Message), strings.Join(md, " "))
		}
		return t.write(a.out())
	}
	if len(commits) == 0 {
		a.info("No commits yet on this branch; `dm commit -m MESSAGE` makes the first.")
		return nil
	}
	return writeDecoratedLog(a.out(), commits, refs)
}

// logInfoKey says which keys of a commit's Info a log for people shows
// (consistencyWords): the others are not decoded.
func logInfoKey(k string) bool { return strings.HasPrefix(k, dotmesh.InfoConsistency) }

// fewerGCs lets a command that decodes a long answer (a log of 10,000
// commits, a list of 1,000 dots) grow its heap to 8 times what it keeps
// before collecting, instead of twice: in a process that lives for one
// answer, the collector's work was a quarter of its time.
func fewerGCs() { debug.SetGCPercent(800) }

// streamLog prints a log for people as the node's answer arrives, one
// commit at a time (client.HistoryEach), with the branches and tags at
// each commit.
func (a *app) streamLog(ctx context.Context, s *session, name dotmesh.DotName, branch, ref string, limit int) error {
	// A long log is many lines: not a write each, nor one per 4 KiB
	// (10,000 commits: 1.3 MB, a tenth of the process's CPU in writes).
	w := bufio.NewWriterSize(a.out(), 64<<10)
	var refs map[dotmesh.CommitID][]string
	n := 0
	_, err := s.c.HistoryEach(ctx, name, branch, ref, 0, limit, logInfoKey, func(p *api.HistoryPage, c *dotmesh.Commit) error {
		if refs == nil {
			current, err := pageCurrent(ctx, s, name, p)
			if err != nil {
				return err
			}
			refs = decorations(p.Refs, current)
		}
		writeLogEntry(w, n, c, refs)
		n++
		return nil
	})
	if err != nil {
		w.Flush()
		return s.wrap(err)
	}
	if n == 0 {
		a.info("No commits yet on this branch; `dm commit -m MESSAGE` makes the first.")
		return nil
	}
	return w.Flush()
}

// logItem is one commit of `dm log --json`: the commit, and the
// branches and tags at it.
type logItem struct {
	jsonCommit
	Refs []string `json:"refs,omitempty"`
}

// decorations turns a history page's refs into git's words: the dot's
// current branch reads "HEAD -> NAME" and comes first.
func decorations(refs map[dotmesh.CommitID][]string, current string) map[dotmesh.CommitID][]string {
	out := make(map[dotmesh.CommitID][]string, len(refs))
	for id, names := range refs {
		var ds []string
		for _, n := range names {
			if n == current {
				ds = append([]string{"HEAD -> " + n}, ds...)
			} else {
				ds = append(ds, n)
			}
		}
		out[id] = ds
	}
	return out
}

// writeLog prints commits the way git log does.
func writeLog(w io.Writer, commits []dotmesh.Commit) error {
	return writeDecoratedLog(w, commits, nil)
}

// writeDecoratedLog is writeLog with the branches and tags at each commit
// after its id, as git log --decorate shows them.
func writeDecoratedLog(out io.Writer, commits []dotmesh.Commit, refs map[dotmesh.CommitID][]string) error {
	w := bufio.NewWriterSize(out, 64<<10) // a long log is many lines: not a write each
	for i := range commits {
		writeLogEntry(w, i, &commits[i], refs)
	}
	return w.Flush()
}

// pageCurrent is the dot's current branch for decorating a history page:
// the page's Current, or from a node older than HistoryPage.Current that
// sent refs, the dot's status.
func pageCurrent(ctx context.Context, s *session, name dotmesh.DotName, p *api.HistoryPage) (string, error) {
	if p.Current != "" || len(p.Refs) == 0 {
		return p.Current, nil
	}
	st, err := s.c.Status(ctx, name)
	if err != nil {
		return "", err
	}
	return st.Dot.Current, nil
}

// logDate is how a log shows a commit's time, as git log does.
const logDate = "Mon Jan 2 15:04:05 2006 -0700"

// writeLogEntry writes the i-th commit of a log.
func writeLogEntry(w *bufio.Writer, i int, c *dotmesh.Commit, refs map[dotmesh.CommitID][]string) {
	if i > 0 {
		w.WriteByte('\n')
	}
	w.WriteString("commit ")
	w.WriteString(string(c.ID))
	if ds := refs[c.ID]; len(ds) > 0 {
		w.WriteString(" (" + printable(strings.Join(ds, ", ")) + ")")
	}
	if c.Pruned {
		w.WriteString(" (pruned)")
	}
	w.WriteString("\nAuthor: ")
	w.WriteString(printable(c.Author))
	w.WriteString("\nDate:   ")
	w.Write(c.Time.Local().AppendFormat(w.AvailableBuffer(), logDate)) // no buffer of its own to escape
	w.WriteByte('\n')
	// Written piece by piece, not concatenated: a log of 10,000 commits
	// made a string per line.
	if cw := consistencyWords(c); cw != "" {
		w.WriteString("State:  ")
		w.WriteString(cw)
		w.WriteByte('\n')
	}
	if len(c.Metadata) > 0 {
		for _, k := range sortedKeys(c.Metadata) {
			w.WriteString("Meta:   ")
			w.WriteString(k)
			w.WriteByte('=')
			w.WriteString(printable(c.Metadata[k]))
			w.WriteByte('\n')
		}
	}
	w.WriteByte('\n')
	for rest := strings.TrimRight(c.Message, "\n"); ; {
		l, more, found := strings.Cut(rest, "\n")
		w.WriteString("    ")
		w.WriteString(printable(l))
		w.WriteByte('\n')
		if !found {
			break
		}
		rest = more
	}
	if c.Pruned {
		fmt.Fprintf(w, "\nHistory pruned here: parent %s and older commits are not on this node (gc removed them, here or where this history came from).\n", c.Parent)
	}
}

func (a *app) resetCmd() *cobra.Command {
	var (
		dot     string
		hard    bool
		restart bool
		sel     selection
	)
	c := &cobra.Command{
		Use:   "reset [--hard] [--restart] REF",
		Short: "Move the current branch back to a commit, restoring its state",
		Long: `Move the dot's current branch back to the commit REF names and restore
the working state of all its subdots to that commit, atomically.

REF is HEAD, HEAD^ (its parent), HEAD^^, HEAD~N, a tag, or a commit id or a
unique prefix of one (at least 4 hex digits), optionally followed by ^ or
~N; it must be in the branch's history.

Without --hard, reset refuses when the branch has uncommitted changes;
--hard discards them. Commits after REF that no other branch reaches are
deleted.

A reset cut short by a crash of the node is finished when the node starts
again: the working state is then wholly REF's, with the head there.

Where the backend puts a new directory at the working tree's path (btrfs
swaps the subvolume), a process whose working directory was inside stays
in the old one: reset warns on stderr, naming it (cd to the path again).

While containers (or pods) use the branch, reset refuses and names them,
rather than change data under them; --restart stops them, resets, and
starts them again, so they see the restored state.

With --all (a deployment's restore, typically to a tag made with
` + "`dm tag --all`" + `), dm first checks that REF names a commit in the history of
every chosen dot's current branch and, without --hard, that none has
uncommitted changes; if one fails the check, it resets none and names the
dots that failed.` + allHelp,
		Example: `  dm reset --hard HEAD^
  dm reset 3f2a9c
  dm reset --hard HEAD~3 --dot app
  dm reset --hard --restart HEAD^
  dm reset --all --hard release-42
  dm reset --all --namespace shop --hard before-migration`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := args[0]
			if err := validateRef(ref); err != nil {
				return err
			}
			if chosen, err := sel.check(dot, 0); err != nil || sel.all {
				if err != nil {
					return err
				}
				return a.resetAll(cmd, chosen, api.ResetRequest{Ref: ref, Hard: hard, Restart: restart})
			}
			s, name, err := a.connectDot(dot)
			if err != nil {
				return err
			}
			cm, err := withProgress(a, cmd.Context(), "reset", func(ctx context.Context) (*dotmesh.ResetReport, error) {
				return s.c.ResetReport(ctx, name, api.ResetRequest{Ref: ref, Hard: hard, Restart: restart})
			})
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), struct {
					jsonCommit
					Holders []dotmesh.Holder `json:"holders,omitempty"`
				}{commitJSON(&cm.Commit), cm.Holders})
			}
			if cm.Holders = others(cm.Holders); len(cm.Holders) > 0 {
				defer func() { fmt.Fprintln(a.io.Stderr, resetWarning(name, cm)) }()
			}
			if a.scripting {
				_, err = fmt.Fprintln(a.out(), cm.ID)
				return err
			}
			_, err = fmt.Fprintf(a.out(), "HEAD of %s is now at %s %s\n", name, shortID(string(cm.ID)), printable(firstLine(cm.Message)))
			return err
		},
	}
	f := c.Flags()
	f.BoolVar(&hard, "hard", false, "discard uncommitted changes")
	f.BoolVar(&restart, "restart", false, "stop the containers using the branch, reset, and start them again")
	f.StringVar(&dot, "dot", "", "reset `DOT` instead of the current dot")
	selectionFlags(c, &sel)
	return c
}
