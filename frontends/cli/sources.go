package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) sourceCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "source",
		Short: "Bind subdots to live databases (dump-backed dots)",
		Long: `A subdot of a dot on the dump backend can be bound to a live database
instead of a directory. Every commit then dumps it (with its own consistent
snapshot) together with the other subdots, and reset restores it: the
database's contents are dropped and recreated from the commit's dump.

Kinds and URLs:
  files       ""                                     (a plain directory; the default)
  postgresql  postgres://user@/db?host=/run/postgresql[&port=5432]  or postgres://user:pw@host:5432/db
  mysql       mysql://root@unix(/run/mysqld/mysqld.sock)/db         or mysql://user:pw@host:3306/db
  redis       redis://127.0.0.1:6379/0                              or redis+unix:///run/redis.sock?db=0
  sqlite      sqlite:///path/app.db

The dump lands in the subdot's directory (postgresql.sql, mysql.sql,
redis.rdb, sqlite.sql) and is stored deduplicated: an unchanged database
adds nothing. Passwords are kept on the node (mode 0600) and never printed.
Sources are per branch and per node; a new branch gets the dumps as files.

A commit takes every source's consistent read at one instant (an exported
PostgreSQL snapshot, mysqldump's transaction, a Redis fork, SQLite's backup,
all started together), then streams the dumps; ` + "`dm show`" + ` lists each
source.SUBDOT.snapshot_time and their spread, sources.snapshot_spread_ms.
Each commit also records the bindings without passwords (source.SUBDOT.kind
and .url): they travel with push and clone, and ` + "`dm source bind --all`" + ` (or
` + "`dm clone --bind`" + `) binds them to the databases of the receiving node.`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.sourceAddCmd(), a.sourceListCmd(), a.sourceRmCmd(), a.sourceBindCmd(),
		a.sourceActionCmd(dotmesh.SourceActivate, "Create the database if missing and load the initial schema",
			"Create the source's database when it does not exist, and load the --init-schema\ngiven to `dm source add`. Nothing happens when it exists."),
		a.sourceActionCmd(dotmesh.SourceDeactivate, "Mark the source's database as garbage (its data stays)",
			"Mark the source's database as garbage. Nothing is dropped until\n`dm source collect-garbage`; commits and resets still use it."),
		a.sourceActionCmd(dotmesh.SourceCollectGarbage, "Drop the source's database if it is marked as garbage",
			"Drop the source's database if, and only if, `dm source deactivate` marked it.\nThe source stays bound; commits skip it until `dm source activate`."),
	)
	return c
}

func (a *app) sourceAddCmd() *cobra.Command {
	var schema string
	c := &cobra.Command{
		Use:   "add DOT.SUBDOT KIND URL [--init-schema FILE]",
		Short: "Bind a subdot to a database",
		Example: `  dm source add app.db postgresql 'postgres://postgres@/shop?host=/run/postgresql'
  dm source add app@feature.cache redis redis://127.0.0.1:6379/0
  dm source add app.db postgresql postgres://app:secret@db:5432/shop --init-schema schema.sql`,
		Args: usageArgs(3, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVolumeName(args[0])
			if err != nil {
				return err
			}
			spec := dotmesh.SourceSpec{Kind: args[1], URL: args[2]}
			if schema != "" {
				b, err := os.ReadFile(schema)
				if err != nil {
					return fmt.Errorf("--init-schema: %w", err)
				}
				spec.InitSchema = string(b)
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			if err := s.c.AddSource(cmd.Context(), v, spec); err != nil {
				return s.wrap(err)
			}
			a.info("bound %s to a %s database; the next commit dumps it", v, spec.Kind)
			return nil
		},
	}
	c.Flags().StringVar(&schema, "init-schema", "", "SQL `FILE` that `dm source activate` loads into a new database")
	return c
}

func (a *app) sourceListCmd() *cobra.Command {
	var branch string
	c := &cobra.Command{
		Use:     "list [DOT]",
		Aliases: []string{"ls"},
		Short:   "List a branch's sources (passwords redacted)",
		Example: "  dm source list\n  dm source list app --branch feature -H",
		Args:    usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.connect()
			if err != nil {
				return err
			}
			explicit := ""
			if len(args) == 1 {
				explicit = args[0]
			}
			name, err := s.currentDot(explicit)
			if err != nil {
				return err
			}
			srcs, err := s.c.Sources(cmd.Context(), name, branch)
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), srcs)
			}
			t := &table{header: []string{"SUBDOT", "KIND", "STATE", "URL"}, scripting: a.scripting}
			for _, src := range srcs {
				t.add(src.Subdot, src.Kind, src.State, src.URL)
			}
			return t.write(a.out())
		},
	}
	c.Flags().StringVar(&branch, "branch", "", "list `BRANCH`'s sources instead of the current branch's")
	return c
}

func (a *app) sourceRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm DOT.SUBDOT",
		Aliases: []string{"remove"},
		Short:   "Unbind a subdot from its database (database and dumps stay)",
		Args:    usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVolumeName(args[0])
			if err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			if err := s.c.RemoveSource(cmd.Context(), v); err != nil {
				return s.wrap(err)
			}
			a.info("unbound %s", v)
			return nil
		},
	}
}

func (a *app) sourceActionCmd(action, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " DOT.SUBDOT",
		Short: short,
		Long:  long,
		Args:  usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVolumeName(args[0])
			if err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			if err := s.c.SourceLifecycle(cmd.Context(), v, action); err != nil {
				return s.wrap(err)
			}
			srcs, err := s.c.Sources(cmd.Context(), v.Dot, v.Branch)
			if err != nil {
				return s.wrap(err)
			}
			for _, src := range srcs {
				if src.Subdot == v.SubdotOrDefault() {
					a.info("%s: %s", v, src.State)
				}
			}
			return nil
		},
	}
}
