package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// settleHome gives the finished command tree what people expect of a
// command at home: --version, shell completion (cobra's completion command
// and dynamic completion of names), `dm docs man`, and typo suggestions
// that stay close to what was typed.
func (a *app) settleHome(root *cobra.Command) {
	root.Version = Version
	root.SetVersionTemplate("Client: {{.Version}}\n")
	root.CompletionOptions.DisableDefaultCmd = false
	root.AddCommand(a.docsCmd())
	// cobra's default distance, 2, proposes `serve` for `merge`; 1 keeps
	// `comit` -> commit, and SuggestFor adds the swapped-letter typos
	// (`brnach`) that plain Levenshtein counts as 2.
	root.SuggestionsMinimumDistance = 1
	for _, c := range root.Commands() {
		c.SuggestFor = append(c.SuggestFor, swaps(c.Name())...)
	}
	completions := a.completionFuncs()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if f, ok := completions[c.CommandPath()]; ok && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = f
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	_ = root.RegisterFlagCompletionFunc("remote", func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return a.completeRemotes(cmd, nil, toComplete)
	})
}

// completionFuncs maps command paths to the completion of their
// positional arguments.
func (a *app) completionFuncs() map[string]cobra.CompletionFunc {
	dots := a.completeDots(1)
	m := map[string]cobra.CompletionFunc{
		"dm switch":          dots,
		"dm path":            dots,
		"dm dot show":        dots,
		"dm dot delete":      dots,
		"dm dot take-over":   dots,
		"dm dot share":       dots,
		"dm dot unshare":     dots,
		"dm dot sharing":     dots,
		"dm dot visibility":  dots,
		"dm audit":           dots,
		"dm gc":              a.completeBucketsAnd(dots),
		"dm verify":          a.completeBucketsAnd(dots),
		"dm source list":     dots,
		"dm transfers abort": dots,
		"dm checkout":        a.completeBranches,
		"dm branch":          a.completeBranches,
		"dm push":            a.completeRemotes,
		"dm pull":            a.completeRemotes,
		"dm clone":           a.completeRemotes,
		"dm remote switch":   a.completeRemotes,
		"dm remote rm":       a.completeRemotes,
		"dm list":            a.completeRemotes,
	}
	for _, p := range []string{"dm remote key add", "dm remote key list", "dm remote key remove", "dm remote unlock"} {
		m[p] = a.completeBucketsAnd(nil)
	}
	return m
}

// swaps returns name with each pair of neighbouring letters exchanged.
func swaps(name string) []string {
	var out []string
	r := []rune(name)
	for i := 0; i+1 < len(r); i++ {
		if r[i] == r[i+1] {
			continue
		}
		s := append([]rune(nil), r...)
		s[i], s[i+1] = s[i+1], s[i]
		out = append(out, string(s))
	}
	return out
}

// completionTimeout bounds the one request a completion makes: a shell
// waiting on a dead node is worse than no completion.
const completionTimeout = 2 * time.Second

// completionSession connects for a completion; nil when there is no
// usable remote.
func (a *app) completionSession() *session {
	s, err := a.connect()
	if err != nil {
		return nil
	}
	return s
}

// completeDots completes the first n positional arguments with the dot
// names of the current remote's node (one request; nothing when no node
// answers).
func (a *app) completeDots(n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		s := a.completionSession()
		if s == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		dots, err := s.c.ListDots(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, st := range dots {
			if st.Dot == nil {
				continue
			}
			if name := st.Dot.DotName().String(); strings.HasPrefix(name, toComplete) {
				out = append(out, name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeBranches completes the first argument with the branches of the
// dot given by --dot, else the current dot.
func (a *app) completeBranches(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	s := a.completionSession()
	if s == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	dot := ""
	if f := cmd.Flags().Lookup("dot"); f != nil {
		dot = f.Value.String()
	}
	name, err := s.currentDot(dot)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	branches, err := s.c.Branches(ctx, name)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, b := range branches {
		if strings.HasPrefix(b.Name, toComplete) {
			out = append(out, b.Name)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeRemotes completes the first argument with the configured
// remotes' names (the config only, no request).
func (a *app) completeRemotes(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	_, cfg, err := a.loadConfig()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, n := range cfg.RemoteNames() {
		if strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeBucketsAnd completes the first argument with the names of the
// bucket remotes (the config only), then with what more completes (nil:
// nothing more).
func (a *app) completeBucketsAnd(more cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		if _, cfg, err := a.loadConfig(); err == nil {
			for _, n := range cfg.RemoteNames() {
				if cfg.Remotes[n].Bucket != nil && strings.HasPrefix(n, toComplete) {
					out = append(out, n)
				}
			}
		}
		if more != nil {
			rest, _ := more(cmd, args, toComplete)
			out = append(out, rest...)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) docsCmd() *cobra.Command {
	docs := &cobra.Command{
		Use:   "docs",
		Short: "Generate documentation from the commands",
		Args:  usageArgs(0, 0),
	}
	docs.AddCommand(&cobra.Command{
		Use:   "man DIR",
		Short: "Write a man page for every dm command into DIR",
		Long: `Write a man page (section 1) for dm and each of its commands into DIR,
creating DIR if needed: dm.1, dm-commit.1, dm-remote-add.1 ... Read one
with man -l DIR/dm-commit.1, or install them under a man path such as
/usr/local/share/man/man1.`,
		Example: `  dm docs man ./man
  man -l ./man/dm-commit.1`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.nodes.ManPages == nil {
				return a.handOver("the man page writer")
			}
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return err
			}
			a.documentScripting(cmd.Root())
			if err := a.nodes.ManPages(cmd.Root(), "dotmesh "+Version, args[0]); err != nil {
				return fmt.Errorf("writing man pages into %s: %w", args[0], err)
			}
			a.info("man pages written to %s", args[0])
			return nil
		},
	})
	return docs
}

// jsonCommit is a commit as --json prints it: Info's decimal values as
// JSON numbers (the shallower Info hides the commit's). The backends
// report Info as strings (a string map on the wire), which scripts should
// not have to convert.
type jsonCommit struct {
	dotmesh.Commit
	Info map[string]any `json:"info,omitempty"`
}

// commitJSON returns c for --json output.
func commitJSON(c *dotmesh.Commit) jsonCommit {
	out := jsonCommit{Commit: *c}
	if len(c.Info) > 0 {
		out.Info = make(map[string]any, len(c.Info))
		for k, v := range c.Info {
			out.Info[k] = infoValue(v)
		}
	}
	return out
}

// infoValue is v as a JSON number when it is a plain decimal integer,
// else v.
func infoValue(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && strconv.FormatInt(n, 10) == v {
		return n
	}
	return v
}

// headJSON returns a dot's head for --json output (nil: no commit).
func headJSON(c *dotmesh.Commit) *jsonCommit {
	if c == nil {
		return nil
	}
	j := commitJSON(c)
	return &j
}

// commitsJSON returns cs for --json output.
func commitsJSON(cs []dotmesh.Commit) []jsonCommit {
	out := make([]jsonCommit, len(cs))
	for i := range cs {
		out[i] = commitJSON(&cs[i])
	}
	return out
}
