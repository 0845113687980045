package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// topCommand is a top-level command: its name and aliases (what invokes
// it), its help group, and how it is built.
type topCommand struct {
	names []string
	group string
	make  func(*app) *cobra.Command
}

// topCommands are dm's top-level commands but docs (settleHome adds it,
// with the completion command): a dm that invokes one of them by its
// name or an alias builds only that one. TestLazyRoot checks this table
// against the whole tree.
var topCommands = [...]topCommand{
	{[]string{"init"}, "dots", (*app).initCmd},
	{[]string{"list", "ls"}, "dots", (*app).listCmd},
	{[]string{"switch"}, "dots", (*app).switchCmd},
	{[]string{"dot"}, "dots", (*app).dotCmd},
	{[]string{"path"}, "dots", (*app).pathCmd},
	{[]string{"commit"}, "commits", (*app).commitCmd},
	{[]string{"log"}, "commits", (*app).logCmd},
	{[]string{"branch"}, "commits", (*app).branchCmd},
	{[]string{"tag"}, "commits", (*app).tagCmd},
	{[]string{"checkout"}, "commits", (*app).checkoutCmd},
	{[]string{"reset"}, "commits", (*app).resetCmd},
	{[]string{"status"}, "commits", (*app).statusCmd},
	{[]string{"diff"}, "commits", (*app).diffCmd},
	{[]string{"show"}, "commits", (*app).showCmd},
	{[]string{"cluster"}, "nodes", (*app).clusterCmd},
	{[]string{"remote"}, "nodes", (*app).remoteCmd},
	{[]string{"serve"}, "nodes", (*app).serveCmd},
	{[]string{"push"}, "nodes", (*app).pushCmd},
	{[]string{"pull"}, "nodes", (*app).pullCmd},
	{[]string{"clone"}, "nodes", (*app).cloneCmd},
	{[]string{"transfers"}, "nodes", (*app).transfersCmd},
	{[]string{"gc"}, "dots", (*app).gcCmd},
	{[]string{"verify"}, "dots", (*app).verifyCmd},
	{[]string{"source"}, "dots", (*app).sourceCmd},
	{[]string{"hook"}, "dots", (*app).hookCmd},
	{[]string{"registry"}, "dots", (*app).registryCmd},
	{[]string{"store"}, "dots", (*app).storeCmd},
	{[]string{"policy"}, "dots", (*app).policyCmd},
	{[]string{"user"}, "hub", (*app).userCmd},
	{[]string{"key"}, "hub", (*app).keyCmd},
	{[]string{"whoami"}, "hub", (*app).whoamiCmd},
	{[]string{"audit"}, "hub", (*app).auditCmd},
	{[]string{"flex"}, "", (*app).flexCmd},
	{[]string{"version"}, "", (*app).versionCmd},
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
