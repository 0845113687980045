// Package cli is the `dm` command: a thin cobra frontend that talks to
// dotmesh nodes through the API client (package client), and opens bucket
// remotes itself (transport/bucketremote) to show and maintain what they
// hold. What runs nodes
// (`dm serve`, starting and stopping a background node, rebuilding a
// registry) is package daemon's, which cmd/dm passes in as a Wiring.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/frontends/flex"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// Version is the dm version, set at build time with
// -ldflags "-X github.com/dotmesh-io/dotmesh/frontends/cli.Version=...".
var Version = "dev"

// IO is what a dm invocation reads from and writes to. Getenv defaults to
// os.Getenv; tests replace it to run without touching the process
// environment.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// app holds the global flags and the streams of one invocation.
type app struct {
	io    IO
	nodes Wiring

	configFlag string       // -c
	remoteFlag string       // --remote
	scripting  bool         // -H
	jsonOut    bool         // --json
	progress   progressFlag // --progress
	timeouts   timeoutFlags
	noSocket   bool // --no-socket
	// passwordFile is --password-file of a command that opens a bucket.
	passwordFile string
	// args is the invocation without the program name, for handOver.
	args []string
	// peeked is the config bucketArg read, for the next loadConfig.
	peeked *peekedConfig
	// signals is topCommand.signals of the command invoked.
	signals signalMode
	// catchInterrupts, when not nil, makes SIGINT and SIGTERM cancel the
	// command's context from now on (a command that does not catch them
	// at once calls it before a prompt, or before a path that its
	// signalMode does not cover).
	catchInterrupts func()
	// scriptingDocumented guards documentScripting.
	scriptingDocumented sync.Once
}

// Main runs dm with args as in os.Args (the program name first, which
// says whether kubelet runs dm as its Flex driver) and returns the exit
// status: 0 on success, else the status of the error's kind (exitHelp:
// 1 to 9, 130 when interrupted); the error is printed as one line
// "dm: <error>" on stderr (a JSON object with --json). w is how dm runs
// nodes.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, w Wiring) int {
	var rest []string
	if len(args) > 0 {
		rest = args[1:]
		if flex.IsDriverPath(args[0]) { // kubelet runs .../dotmesh.io~dm/dm
			rest = append([]string{"flex"}, rest...)
		}
	}
	return run(context.Background(), IO{Stdin: stdin, Stdout: stdout, Stderr: stderr}, w, rest, true)
}

// Run is Main with a context and explicit streams and environment, and
// args without the program name. It leaves signals alone: ctx is the
// caller's to cancel.
func Run(ctx context.Context, streams IO, w Wiring, args []string) int {
	return run(ctx, streams, w, args, false)
}

// run is Run; with interrupts, SIGINT and SIGTERM cancel the command's
// context (it ends "interrupted", status 130), but as the command's
// signalMode says: a command that only reads leaves them their default
// action, a commit catches them only once it has run for lateCatch.
func run(ctx context.Context, streams IO, w Wiring, args []string, interrupts bool) int {
	if flexCall(args) {
		if interrupts {
			var stop context.CancelFunc
			ctx, stop = notifyInterrupts(ctx)
			defer func() { go stop() }()
		}
		return runFlex(ctx, streams, w, args[1:])
	}
	root, a := newRootFor(streams, w, args)
	a.args = args
	if w.HandOver != nil && handsOver(root, w, args) {
		err := w.HandOver(args) // returns only on failure
		return reportError(streamOr(streams.Stderr), err, wantsJSON(args))
	}
	if interrupts {
		var stop context.CancelFunc
		if a.signals == catchAtOnce {
			ctx, stop = notifyInterrupts(ctx)
		} else {
			ctx, stop = context.WithCancel(ctx)
			a.catchInterrupts = sync.OnceFunc(func() {
				sig, _ := notifyInterrupts(ctx)
				context.AfterFunc(sig, stop)
			})
			if a.signals == catchLate {
				// A timer starts no goroutine till it fires.
				t := time.AfterFunc(lateCatch, a.catchInterrupts)
				defer t.Stop()
			}
		}
		defer func() { go stop() }()
	}
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if code, ok := exitStatusOf(err); ok { // dm diff --exit-code
			return code
		}
		stderr := streamOr(streams.Stderr)
		if isCobraUsage(err) {
			err = kinded(errUsage, err)
		}
		jsonOut, _ := root.PersistentFlags().GetBool("json")
		return reportError(stderr, err, jsonOut || wantsJSON(args))
	}
	return exitOK
}

// notifyInterrupts is ctx cancelled by SIGINT or SIGTERM. Its stop is
// best called behind the return (go stop()): signal.Stop waits, yielding
// in a loop, until the runtime's signal goroutine has run and is idle,
// which on a loaded machine is a wait at the end of every dm for another
// thread to be scheduled; a dm exits meanwhile, and a longer-lived caller
// still gets the default actions back.
func notifyInterrupts(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// streamOr returns w, or io.Discard when w is nil.
func streamOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// oneLine folds a multi-line message (cobra's suggestions, say) into one
// line, so every error is a single line on stderr.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	// cobra's "unknown command" suggestions come as a paragraph.
	s = strings.Join(parts, " ")
	return strings.Replace(s, " Did you mean this? ", "; did you mean: ", 1)
}

// NewRootCommand builds the dm command tree; w is how it runs nodes.
func NewRootCommand(streams IO, w Wiring) *cobra.Command {
	root, _ := newRoot(streams, w)
	return root
}

// newRoot is NewRootCommand, with the invocation's app.
func newRoot(streams IO, w Wiring) (*cobra.Command, *app) {
	return newRootFor(streams, w, nil)
}

// newRootFor builds the root with only the top-level command that args
// invoke (see invoked), or the whole tree when they invoke none (or args
// is nil): building every command's flags cost a dm a fifth of its
// start.
func newRootFor(streams IO, w Wiring, args []string) (*cobra.Command, *app) {
	if streams.Getenv == nil {
		streams.Getenv = os.Getenv
	}
	if streams.Stdin == nil {
		streams.Stdin = strings.NewReader("")
	}
	if streams.Stdout == nil {
		streams.Stdout = io.Discard
	}
	if streams.Stderr == nil {
		streams.Stderr = io.Discard
	}
	a := &app{io: streams, nodes: w}
	root := &cobra.Command{
		Use:   "dm",
		Short: "dm gives application state a git-like life",
		Long: `dm commits, branches and resets the state of applications — the data
directories and databases behind a stack of services — atomically across
all of them, like git does for source code.

A dot is a named, versioned unit of state; each service uses one subdot of
it (a subdirectory of the dot's working tree). A commit captures all
subdots of a branch at once.

dm talks to a dotmesh node over its HTTP API. ` + "`dm cluster init`" + ` starts a local
node and configures dm to use it; ` + "`dm remote add`" + ` adds other nodes. A node
can be a hub for a team, each user with their own key and namespace (see
` + "`dm user --help`" + `).

` + progressHelp + `

` + exitHelp,
		Example: `  dm cluster init
  dm init app
  cp -r ./pgdata/. "$(dm path app.db)"
  dm commit -m "seed data"
  dm checkout -b experiment
  dm reset --hard HEAD^`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.Stdin)
	root.SetOut(streams.Stdout)
	root.SetErr(streams.Stderr)
	// Flag errors would otherwise be bare; point at the help instead of
	// dumping the usage.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return kinded(errUsage, fmt.Errorf("%w (see '%s --help')", err, c.CommandPath()))
	})

	pf := root.PersistentFlags()
	pf.StringVarP(&a.configFlag, "config", "c", "", "client config `FILE` (default $DOTMESH_CONFIG, else ~/.dotmesh/config)")
	pf.StringVar(&a.remoteFlag, "remote", "", "use remote `NAME` instead of the current one")
	pf.BoolVarP(&a.scripting, "scripting", "H", false, "scripting mode: no headers, tab-separated fields, exact byte counts")
	pf.BoolVar(&a.jsonOut, "json", false, "print the result as JSON")
	a.progress = progressAuto
	pf.Var(&a.progress, "progress", "progress of long operations on stderr: auto (a bar on a terminal), none or json (lines of JSON)")
	_ = root.RegisterFlagCompletionFunc("progress", cobra.FixedCompletions([]string{progressAuto, progressNone, progressJSON}, cobra.ShellCompDirectiveNoFileComp))
	a.timeouts.add(pf)
	pf.BoolVar(&a.noSocket, "no-socket", false, "dial the remote's TCP address even where its node's local API socket (DIR/"+node.APISocketFile+" of the remote's data directory) serves")

	root.AddGroup(
		&cobra.Group{ID: "dots", Title: "Dots:"},
		&cobra.Group{ID: "commits", Title: "Commits and branches:"},
		&cobra.Group{ID: "nodes", Title: "Nodes and remotes:"},
		&cobra.Group{ID: "hub", Title: "Users, keys and the audit (a hub):"},
	)
	if only := invoked(pf, args); only != nil {
		// One command's invocation: nothing else is built (no docs, no
		// completions, no typo suggestions, which only the whole tree's
		// invocations use), and no completion command.
		root.Version = Version
		root.CompletionOptions.DisableDefaultCmd = true
		a.signals = only.signals
		c := only.make(a)
		c.GroupID = only.group
		root.AddCommand(c)
	} else {
		for _, t := range topCommands {
			c := t.make(a)
			c.GroupID = t.group
			root.AddCommand(c)
		}
		a.settleHome(root)
	}
	// The -H paragraphs join the help texts only when help is shown (and
	// for the man pages): building them cost every dm 4% of its start.
	help := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		a.documentScripting(root)
		help(c, args)
	})
	return root, a
}

// documentScripting adds the -H paragraphs to the help texts of root,
// once.
func (a *app) documentScripting(root *cobra.Command) {
	a.scriptingDocumented.Do(func() { documentScripting(root) })
}

// usageArgs is cobra.RangeArgs with an error that shows the usage line
// instead of "accepts 1 arg(s), received 0".
func usageArgs(min, max int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			return kinded(errUsage, fmt.Errorf("usage: %s", c.UseLine()))
		}
		return nil
	}
}

// terminalFd returns the file descriptor of r when it is a terminal.
func terminalFd(r io.Reader) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, isTerminal(fd)
}
