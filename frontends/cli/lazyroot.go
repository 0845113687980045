package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// topCommand is a top-level command: its name and aliases (what invokes
// it), its help group, how it is built, and whether it is quick.
type topCommand struct {
	names []string
	group string
	make  func(*app) *cobra.Command
	// quick marks a command that only reads: at most one request, nothing
	// written locally. Main installs no handler of SIGINT and SIGTERM for
	// it: their default action ends it as the handler would (the node
	// sees the connection close either way; a shell reports status 130
	// either way), only without the "interrupted" line. The handler costs
	// every dm that has one two threads more (the runtime's signal
	// thread and its template thread): 3 ms of CPU and 5 to 13 ms of wall
	// time at load 9 to 12 on the 2-core bench machine, more than a
	// listing's own work.
	quick bool
}

// topCommands are dm's top-level commands but docs (settleHome adds it,
// with the completion command): a dm that invokes one of them by its
// name or an alias builds only that one. TestLazyRoot checks this table
// against the whole tree.
var topCommands = [...]topCommand{
	{[]string{"init"}, "dots", (*app).initCmd, false},
	{[]string{"list", "ls"}, "dots", (*app).listCmd, true},
	{[]string{"switch"}, "dots", (*app).switchCmd, false},
	{[]string{"dot"}, "dots", (*app).dotCmd, false},
	{[]string{"path"}, "dots", (*app).pathCmd, false},
	{[]string{"commit"}, "commits", (*app).commitCmd, false},
	{[]string{"log"}, "commits", (*app).logCmd, true},
	{[]string{"branch"}, "commits", (*app).branchCmd, false},
	{[]string{"tag"}, "commits", (*app).tagCmd, false},
	{[]string{"checkout"}, "commits", (*app).checkoutCmd, false},
	{[]string{"reset"}, "commits", (*app).resetCmd, false},
	{[]string{"status"}, "commits", (*app).statusCmd, false},
	{[]string{"diff"}, "commits", (*app).diffCmd, false},
	{[]string{"show"}, "commits", (*app).showCmd, false},
	{[]string{"cluster"}, "nodes", (*app).clusterCmd, false},
	{[]string{"remote"}, "nodes", (*app).remoteCmd, false},
	{[]string{"serve"}, "nodes", (*app).serveCmd, false},
	{[]string{"push"}, "nodes", (*app).pushCmd, false},
	{[]string{"pull"}, "nodes", (*app).pullCmd, false},
	{[]string{"clone"}, "nodes", (*app).cloneCmd, false},
	{[]string{"transfers"}, "nodes", (*app).transfersCmd, false},
	{[]string{"gc"}, "dots", (*app).gcCmd, false},
	{[]string{"verify"}, "dots", (*app).verifyCmd, false},
	{[]string{"source"}, "dots", (*app).sourceCmd, false},
	{[]string{"hook"}, "dots", (*app).hookCmd, false},
	{[]string{"registry"}, "dots", (*app).registryCmd, false},
	{[]string{"store"}, "dots", (*app).storeCmd, false},
	{[]string{"policy"}, "dots", (*app).policyCmd, false},
	{[]string{"user"}, "hub", (*app).userCmd, false},
	{[]string{"key"}, "hub", (*app).keyCmd, false},
	{[]string{"whoami"}, "hub", (*app).whoamiCmd, true},
	{[]string{"audit"}, "hub", (*app).auditCmd, false},
	{[]string{"flex"}, "", (*app).flexCmd, false},
	{[]string{"version"}, "", (*app).versionCmd, true},
}

// invoked returns the top-level command that args (without the program
// name) invoke, found as cobra finds it (its stripFlags: the first
// argument that is neither a flag of the root, pf, nor a flag's value),
// or nil when the invocation needs the whole tree: no command (dm alone,
// --help, --version), help, completion, docs, an unknown command (for
// its suggestions), or flags cobra might read otherwise than this does.
func invoked(pf *pflag.FlagSet, args []string) *topCommand {
	for len(args) > 0 {
		s := args[0]
		args = args[1:]
		var f *pflag.Flag
		switch {
		case s == "" || s == "-" || s == "--":
			return nil
		case strings.HasPrefix(s, "--"):
			if strings.Contains(s, "=") {
				continue
			}
			f = pf.Lookup(s[2:])
		case strings.HasPrefix(s, "-"):
			if len(s) != 2 {
				return nil // -Hc, -c=FILE: cobra reads these its own way
			}
			f = pf.ShorthandLookup(s[1:])
		default:
			for i := range topCommands {
				for _, n := range topCommands[i].names {
					if n == s {
						return &topCommands[i]
					}
				}
			}
			return nil
		}
		if f == nil {
			return nil // --help, --version, or an unknown flag
		}
		if f.NoOptDefVal == "" { // the flag's value is the next argument
			if len(args) <= 1 {
				return nil
			}
			args = args[1:]
		}
	}
	return nil
}
