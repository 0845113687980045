package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// diffFlags are the flags dm diff and dm show share.
type diffFlags struct {
	dot, branch string
	stat        bool
	lines       bool
	nameStatus  bool
	noRows      bool
	maxRows     int
	context     int
	color       string
	exitCode    bool
}

// Limits of the flags, so a typo cannot ask a node for a gigabyte page.
const (
	maxRowsFlag    = 100000
	maxContextFlag = 10000
)

func (f *diffFlags) add(fs *pflag.FlagSet, verb string) {
	fs.StringVar(&f.dot, "dot", "", verb+" `DOT` instead of the current dot")
	fs.StringVar(&f.branch, "branch", "", "the `BRANCH` whose HEAD and working state are meant (default: the dot's current branch)")
	fs.BoolVar(&f.stat, "stat", false, "a line per changed path with its sizes, and a summary; reads no file contents")
	fs.BoolVar(&f.lines, "lines", false, "with --stat: count changed lines as git's --stat does (reads the changed files)")
	fs.BoolVar(&f.nameStatus, "name-status", false, "a line per changed path: A (added), D (deleted), M (modified) or T (type changed), then the path")
	fs.BoolVar(&f.noRows, "no-rows", false, "for database subdots, say only whether they changed (no schema and row changes)")
	fs.IntVar(&f.maxRows, "max-rows", dotmesh.DefaultMaxRows, "list at most `N` changed rows per table (the counts are always complete)")
	fs.IntVarP(&f.context, "unified", "U", 3, "show `N` lines of context around each change")
	fs.StringVar(&f.color, "color", "auto", "colour the output: `WHEN` is auto (on a terminal), always or never")
	fs.BoolVar(&f.exitCode, "exit-code", false, "exit with status 1 when there are differences, 0 when there are none")
}

// check validates the flags before anything is sent.
func (f *diffFlags) check() error {
	if err := checkDotBranch(f.dot, f.branch); err != nil {
		return err
	}
	if f.lines && !f.stat {
		return fmt.Errorf("%w: --lines goes with --stat", dotmesh.ErrInvalidArgument)
	}
	if f.stat && f.nameStatus {
		return fmt.Errorf("%w: --stat and --name-status are two different outputs; pass one of them", dotmesh.ErrInvalidArgument)
	}
	if f.maxRows < 1 || f.maxRows > maxRowsFlag {
		return fmt.Errorf("%w: --max-rows %d must be from 1 to %d", dotmesh.ErrInvalidArgument, f.maxRows, maxRowsFlag)
	}
	if f.context < 1 || f.context > maxContextFlag {
		return fmt.Errorf("%w: -U %d must be from 1 to %d", dotmesh.ErrInvalidArgument, f.context, maxContextFlag)
	}
	switch f.color {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("%w: --color %q must be auto, always or never", dotmesh.ErrInvalidArgument, truncated(f.color))
	}
	return nil
}

// checkDotBranch validates the --dot and --branch flags, when given.
func checkDotBranch(dot, branch string) error {
	if dot != "" {
		if _, err := parseDotName(dot); err != nil {
			return err
		}
	}
	if branch != "" {
		return validateBranch(branch)
	}
	return nil
}

// options turns the flags into what the node is asked. File contents
// are read for patches (the default output, --json) and for --stat
// --lines; --stat alone and --name-status need only the trees (on the
// files backend, the manifests), --name-status not even the rows.
func (f *diffFlags) options(from, to string, paths []string, jsonOut bool) dotmesh.DiffOptions {
	o := dotmesh.DiffOptions{Branch: f.branch, From: from, To: to, Paths: paths, MaxRows: f.maxRows, Context: f.context}
	o.Content = jsonOut || (!f.stat && !f.nameStatus) || f.lines
	o.Rows = !f.noRows && (jsonOut || !f.nameStatus)
	return o
}

// useColor decides colouring: auto means a terminal on stdout.
func (a *app) useColor(when string) bool {
	switch when {
	case "always":
		return true
	case "never":
		return false
	}
	if a.scripting || a.jsonOut {
		return false
	}
	f, ok := a.io.Stdout.(*os.File)
	return ok && isTerminal(int(f.Fd()))
}

// parseDiffPaths checks the paths after "--": subdots or paths inside
// the dot's tree, relative, slash-separated ("db", "web/index.html"); one
// trailing slash is allowed, as shells complete directories with one.
func parseDiffPaths(args []string) ([]string, error) {
	var paths []string
	for _, p := range args {
		clean := strings.TrimSuffix(p, "/")
		if clean == "" {
			return nil, fmt.Errorf("%w: an empty path after --; name a subdot or a path inside the dot, like db or web/index.html", dotmesh.ErrInvalidArgument)
		}
		if err := dotmesh.ValidateTreePath(clean); err != nil {
			return nil, err
		}
		paths = append(paths, clean)
	}
	return paths, nil
}

// splitRefsPaths splits `[REF [REF]] [-- PATH...]` as git does: refs
// before "--", paths after it.
func splitRefsPaths(cmd *cobra.Command, args []string, maxRefs int) (refs, paths []string, err error) {
	refs = args
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		refs, paths = args[:dash], args[dash:]
	}
	if len(refs) > maxRefs {
		return nil, nil, kinded(errUsage, fmt.Errorf("too many refs (%d): usage: %s; put paths after --", len(refs), cmd.UseLine()))
	}
	for _, r := range refs {
		if err := validateRef(r); err != nil {
			return nil, nil, err
		}
	}
	if paths, err = parseDiffPaths(paths); err != nil {
		return nil, nil, err
	}
	return refs, paths, nil
}

// errDifferences is --exit-code's "there are differences": status 1,
// nothing on stderr.
var errDifferences = &silentExit{code: exitFailure}

// silentExit ends dm with a status and no message.
type silentExit struct{ code int }

func (e *silentExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitStatusOf returns the status of a silentExit in err.
func exitStatusOf(err error) (int, bool) {
	var s *silentExit
	if errors.As(err, &s) {
		return s.code, true
	}
	return 0, false
}

func (a *app) diffCmd() *cobra.Command {
	var f diffFlags
	c := &cobra.Command{
		Use:   "diff [REF [REF]] [-- SUBDOT|PATH...]",
		Short: "Show changes between commits and the working state",
		Long: `Show what changed, as git diff does:

  dm diff                 the working state against HEAD (what dm commit would record)
  dm diff REF             the working state against commit REF
  dm diff REF1 REF2       commit REF1 against commit REF2

REF is HEAD, a branch or tag name, or a commit id (or a unique prefix of at
least 4 hex digits), optionally followed by ^ (the parent) or ~N (N
generations back): HEAD^, master~2, v1^. Paths after -- limit the diff to
subdots or paths inside them (db, web/index.html).

Files: unified diffs of text files, with git's headers; binary files are
named with their sizes. Database subdots (a source made their dump): first
their schema changes, then per table the counts of inserted, deleted and
updated rows, and the rows by primary key, at most --max-rows per table:
"+ (key) values", "- (key) values", "~ (key) column: old -> new". Tables
without a primary key are compared as sorted rows. --no-rows says only
whether a database changed, which is faster.

--stat prints a line per changed path with its sizes (with --lines,
"Bin" for binary files), per database its row counts, and a summary; it reads no file
contents, so it is fast (on the files backend it reads only the commits'
manifests). --stat --lines counts changed lines as git's --stat does, with
its +/- bars, reading the changed files. With -H, --stat prints numstat
lines: old size, new size, path (--lines: insertions, deletions, path; "-"
for binary files); per database table "table", subdot, table, inserted,
deleted, updated. --name-status prints
one letter and the path per change (directories end in /). --json prints
the whole comparison.

The exit status is 0 whether or not there are differences; with
--exit-code it is 1 when there are some, as git's.`,
		Example: `  dm diff
  dm diff --stat HEAD^ HEAD
  dm diff master feature -- db
  dm diff --name-status v1
  dm diff --json --max-rows 100 HEAD~3 HEAD -- db`,
		Args: usageArgs(0, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			refs, paths, err := splitRefsPaths(cmd, args, 2)
			if err != nil {
				return err
			}
			var from, to string
			if len(refs) > 0 {
				from = refs[0]
			}
			if len(refs) > 1 {
				to = refs[1]
			}
			s, name, err := a.connectDot(f.dot)
			if err != nil {
				return err
			}
			d, err := s.c.Diff(cmd.Context(), name, f.options(from, to, paths, a.jsonOut))
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				err = writeJSON(a.out(), d)
			} else {
				err = a.writeDiff(d, &f)
			}
			if err == nil && f.exitCode && hasChanges(d) {
				return errDifferences
			}
			return err
		},
	}
	f.add(c.Flags(), "compare")
	return c
}

func (a *app) showCmd() *cobra.Command {
	var f diffFlags
	c := &cobra.Command{
		Use:   "show [REF] [-- SUBDOT|PATH...]",
		Short: "Show a commit and what it changed",
		Long: `Show a commit (HEAD unless REF names another): its id, author, date,
metadata and message, and its diff against its parent; a first commit, or
one whose parent gc removed, shows everything in it as added, as git show
of a root commit. REF is as in dm diff (HEAD~2, v1, a branch
name, a commit id); the diff flags are dm diff's.

With --json: {"commit": ..., "diff": ...}.`,
		Example: `  dm show
  dm show HEAD^ --stat
  dm show v1 -- db --max-rows 50`,
		Args: usageArgs(0, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			refs, paths, err := splitRefsPaths(cmd, args, 1)
			if err != nil {
				return err
			}
			ref := "HEAD"
			if len(refs) == 1 {
				ref = refs[0]
			}
			s, name, err := a.connectDot(f.dot)
			if err != nil {
				return err
			}
			cm, err := s.c.ResolveRef(cmd.Context(), name, f.branch, ref)
			if err != nil {
				return s.wrap(err)
			}
			// Against its parent; a first commit (or one whose parent gc
			// removed) against nothing, so all of it shows as added.
			o := f.options("", string(cm.ID), paths, a.jsonOut)
			o.Parent = true
			d, err := s.c.Diff(cmd.Context(), name, o)
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				err = writeJSON(a.out(), struct {
					Commit *jsonCommit   `json:"commit"`
					Diff   *dotmesh.Diff `json:"diff"`
				}{headJSON(cm), d})
			} else {
				err = a.writeShow(cm, d, &f)
			}
			if err == nil && f.exitCode && hasChanges(d) {
				return errDifferences
			}
			return err
		},
	}
	f.add(c.Flags(), "show")
	return c
}

// hasChanges says whether a diff found anything.
func hasChanges(d *dotmesh.Diff) bool {
	s := d.Stat
	return len(d.Files) > 0 || len(d.Databases) > 0 || s.Added+s.Removed+s.Modified+s.TypeChanged+s.Databases > 0
}
