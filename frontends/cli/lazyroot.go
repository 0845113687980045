package cli

import (
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// topCommand is a top-level command: its name and aliases (what invokes
// it), its help group, how it is built, and when it catches SIGINT and
// SIGTERM.
type topCommand struct {
	names   []string
	group   string
	make    func(*app) *cobra.Command
	signals signalMode
}

// signalMode is when a command installs its handler of SIGINT and
// SIGTERM, which cancels its context (it ends "interrupted", status 130).
// The handler costs every dm that installs it two threads more (the
// runtime's signal thread and its template thread): 0.35 ms of CPU and
// 0.8 ms of wall time at load 1.3 on the 2-core bench machine (dm
// version, 150 runs each way), 3 ms of CPU and 5 to 13 ms of wall at
// load 9 to 12, more than a listing's own work. Without it, the
// signals' default action ends dm: the node sees the connection close
// either way, a shell reports status 130 either way, only the
// "interrupted" line is missing. Whatever mode, a prompt catches the
// signals first (app.catchInterrupts), so that Ctrl-C never leaves the
// terminal without echo.
type signalMode uint8

const (
	// catchAtOnce installs the handler before the command runs.
	catchAtOnce signalMode = iota
	// catchNever leaves the default action to a command that only reads:
	// at most one request, nothing written locally.
	catchNever
	// catchLate installs the handler once the command has run for
	// lateCatch, for a command that sends one request and writes nothing
	// locally: a signal before then is one no person at a terminal can
	// send in reaction to what dm shows, and ends dm as catchNever does
	// (the request not yet sent, or the node seeing it cut); a long
	// command is interrupted as with catchAtOnce. Any other path of it
	// (several requests, a prompt) calls app.catchInterrupts first.
	catchLate
)

// lateCatch is how long a catchLate command runs before it catches
// SIGINT and SIGTERM: most commits are done before it.
const lateCatch = 200 * time.Millisecond

// topCommands are dm's top-level commands but docs (settleHome adds it,
// with the completion command): a dm that invokes one of them by its
// name or an alias builds only that one. TestLazyRoot checks this table
// against the whole tree.
var topCommands = [...]topCommand{
	{[]string{"init"}, "dots", (*app).initCmd, catchAtOnce},
	{[]string{"list", "ls"}, "dots", (*app).listCmd, catchNever},
	{[]string{"switch"}, "dots", (*app).switchCmd, catchAtOnce},
	{[]string{"dot"}, "dots", (*app).dotCmd, catchAtOnce},
	{[]string{"path"}, "dots", (*app).pathCmd, catchAtOnce},
	{[]string{"commit"}, "commits", (*app).commitCmd, catchLate},
	{[]string{"log"}, "commits", (*app).logCmd, catchNever},
	{[]string{"branch"}, "commits", (*app).branchCmd, catchAtOnce},
	{[]string{"tag"}, "commits", (*app).tagCmd, catchAtOnce},
	{[]string{"checkout"}, "commits", (*app).checkoutCmd, catchAtOnce},
	{[]string{"reset"}, "commits", (*app).resetCmd, catchAtOnce},
	{[]string{"status"}, "commits", (*app).statusCmd, catchAtOnce},
	{[]string{"diff"}, "commits", (*app).diffCmd, catchAtOnce},
	{[]string{"show"}, "commits", (*app).showCmd, catchAtOnce},
	{[]string{"cluster"}, "nodes", (*app).clusterCmd, catchAtOnce},
	{[]string{"remote"}, "nodes", (*app).remoteCmd, catchAtOnce},
	{[]string{"serve"}, "nodes", (*app).serveCmd, catchAtOnce},
	{[]string{"push"}, "nodes", (*app).pushCmd, catchAtOnce},
	{[]string{"pull"}, "nodes", (*app).pullCmd, catchAtOnce},
	{[]string{"clone"}, "nodes", (*app).cloneCmd, catchAtOnce},
	{[]string{"transfers"}, "nodes", (*app).transfersCmd, catchAtOnce},
	{[]string{"gc"}, "dots", (*app).gcCmd, catchAtOnce},
	{[]string{"verify"}, "dots", (*app).verifyCmd, catchAtOnce},
	{[]string{"source"}, "dots", (*app).sourceCmd, catchAtOnce},
	{[]string{"hook"}, "dots", (*app).hookCmd, catchAtOnce},
	{[]string{"registry"}, "dots", (*app).registryCmd, catchAtOnce},
	{[]string{"store"}, "dots", (*app).storeCmd, catchAtOnce},
	{[]string{"policy"}, "dots", (*app).policyCmd, catchAtOnce},
	{[]string{"user"}, "hub", (*app).userCmd, catchAtOnce},
	{[]string{"key"}, "hub", (*app).keyCmd, catchAtOnce},
	{[]string{"whoami"}, "hub", (*app).whoamiCmd, catchNever},
	{[]string{"audit"}, "hub", (*app).auditCmd, catchAtOnce},
	{[]string{"flex"}, "", (*app).flexCmd, catchAtOnce},
	{[]string{"version"}, "", (*app).versionCmd, catchNever},
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
