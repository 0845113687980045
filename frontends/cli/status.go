package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) statusCmd() *cobra.Command {
	var (
		dot, branch string
		rows        bool
	)
	c := &cobra.Command{
		Use:   "status",
		Short: "Show what the working state has that HEAD lacks, per subdot",
		Long: `Show the branch and its head, then per subdot what differs from the head,
as git status does: added, modified and deleted files with their sizes;
for a database subdot (one a source is bound to), whether it changed, and
with --rows by how many rows per table (which dumps the database: slower).

"nothing to commit, working state clean" when nothing differs. ` + "`dm diff`" + `
shows the changes themselves.

With -H, one line per item, tab-separated: "file", subdot, A|M|D|T, path,
old size, new size; "database", subdot, kind, changed|unchanged; with
--rows "table", subdot, table, inserted, deleted, updated.`,
		Example: `  dm status
  dm status --rows
  dm status --dot app --branch feature --json`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDotBranch(dot, branch); err != nil {
				return err
			}
			s, name, err := a.connectDot(dot)
			if err != nil {
				return err
			}
			st, err := s.c.WorkingStatus(cmd.Context(), name, dotmesh.StatusOptions{Branch: branch, Rows: rows})
			if err != nil {
				return s.wrap(err)
			}
			switch {
			case a.jsonOut:
				return writeJSON(a.out(), st)
			case a.scripting:
				return writeStatusScript(a.out(), st)
			}
			return writeStatus(a.out(), st)
		},
	}
	f := c.Flags()
	f.StringVar(&dot, "dot", "", "describe `DOT` instead of the current dot")
	f.StringVar(&branch, "branch", "", "describe `BRANCH` instead of the dot's current branch")
	f.BoolVar(&rows, "rows", false, "count the changed rows per table of database subdots")
	return c
}

// statusWords are git status's words for the change kinds.
var statusWords = map[string]string{
	dotmesh.ChangeAdded:       "added:",
	dotmesh.ChangeRemoved:     "deleted:",
	dotmesh.ChangeModified:    "modified:",
	dotmesh.ChangeTypeChanged: "typechange:",
}

func writeStatus(w io.Writer, st *dotmesh.Status) error {
	fmt.Fprintf(w, "On branch %s of %s\n", printable(st.Branch), st.Dot)
	if st.Head == "" {
		fmt.Fprintln(w, "No commits yet")
	} else {
		fmt.Fprintf(w, "HEAD is %s\n", shortID(string(st.Head)))
	}
	for _, sd := range st.Subdots {
		if sd.Database != nil || sd.Kind != "files" {
			state := "unchanged"
			if sd.Changed {
				state = "changed"
			}
			fmt.Fprintf(w, "\nsubdot %s (%s database): %s\n", printable(sd.Subdot), printable(sd.Kind), state)
			if sd.Database != nil {
				for _, t := range sd.Database.Tables {
					fmt.Fprintf(w, "\ttable %s: +%d -%d ~%d rows\n", printable(t.Table), t.Inserted, t.Deleted, t.Updated)
				}
				if n := len(sd.Database.Schema); n > 0 {
					fmt.Fprintf(w, "\t%d schema %s\n", n, plural(n, "change", "changes"))
				}
			}
			continue
		}
		if !sd.Changed {
			continue
		}
		fmt.Fprintf(w, "\nsubdot %s:\n", printable(sd.Subdot))
		for _, fd := range sd.Files {
			fmt.Fprintf(w, "\t%-12s%s (%s)\n", statusWords[fd.Kind], printable(displayPath(fd)), sizeChange(fd))
		}
	}
	fmt.Fprintln(w)
	if st.Clean {
		fmt.Fprintln(w, "nothing to commit, working state clean")
		return nil
	}
	fmt.Fprintln(w, "(`dm commit -m MESSAGE` records these changes; `dm diff` shows them; `dm reset --hard HEAD` discards them)")
	return nil
}

// sizeChange is a path's size, or its sizes before and after.
func sizeChange(fd dotmesh.FileDiff) string {
	switch {
	case isDirChange(fd):
		return "directory"
	case fd.Kind == dotmesh.ChangeAdded:
		return HumanSize(fd.NewSize)
	case fd.Kind == dotmesh.ChangeRemoved:
		return HumanSize(fd.OldSize)
	}
	return HumanSize(fd.OldSize) + " -> " + HumanSize(fd.NewSize)
}

func writeStatusScript(w io.Writer, st *dotmesh.Status) error {
	t := &table{scripting: true}
	for _, sd := range st.Subdots {
		if sd.Database != nil || sd.Kind != "files" {
			state := "unchanged"
			if sd.Changed {
				state = "changed"
			}
			t.add("database", sd.Subdot, sd.Kind, state)
			if sd.Database != nil {
				for _, tb := range sd.Database.Tables {
					t.add("table", sd.Subdot, tb.Table, fmt.Sprint(tb.Inserted), fmt.Sprint(tb.Deleted), fmt.Sprint(tb.Updated))
				}
			}
			continue
		}
		for _, fd := range sd.Files {
			t.add("file", sd.Subdot, letter(fd.Kind), displayPath(fd), fmt.Sprint(fd.OldSize), fmt.Sprint(fd.NewSize))
		}
	}
	return t.write(w)
}
