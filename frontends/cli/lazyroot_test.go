package cli

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// The lazy root's table names every top-level command of the whole tree
// with its aliases and group, and each command and alias, and each
// command below them, reaches the same command with the same help as in
// the whole tree.
func TestLazyRoot(t *testing.T) {
	full := NewRootCommand(IO{}, testWiring)
	seen := map[string]bool{}
	for _, c := range full.Commands() {
		switch c.Name() {
		case "docs", "completion", "help":
			if invoked(full.PersistentFlags(), []string{c.Name()}) != nil {
				t.Errorf("dm %s builds one command; it needs the whole tree", c.Name())
			}
			continue
		}
		names := append([]string{c.Name()}, c.Aliases...)
		tc := invoked(full.PersistentFlags(), []string{c.Name()})
		if tc == nil {
			t.Errorf("dm %s builds the whole tree: add it to topCommands", c.Name())
			continue
		}
		if !slices.Equal(tc.names, names) || tc.group != c.GroupID {
			t.Errorf("topCommands has %v in group %q; the tree has %v in %q", tc.names, tc.group, names, c.GroupID)
		}
		seen[c.Name()] = true
		for _, n := range names {
			var walk func(*cobra.Command, []string)
			walk = func(fc *cobra.Command, path []string) {
				args := append(slices.Clone(path), "--help")
				if got, want := helpOf(t, args, true), helpOf(t, args, false); got != want {
					t.Errorf("dm %s: the lazy root's help differs:\n%s\nthe whole tree's:\n%s", strings.Join(args, " "), got, want)
				}
				lazy, _ := newRootFor(IO{}, testWiring, path)
				if len(lazy.Commands()) != 1 {
					t.Errorf("dm %s builds %d top-level commands, want 1", strings.Join(path, " "), len(lazy.Commands()))
				}
				lc, _, err := lazy.Find(path)
				if err != nil || lc.CommandPath() != fc.CommandPath() {
					t.Errorf("dm %s finds %v (%v) in the lazy root, want %s", strings.Join(path, " "), lc, err, fc.CommandPath())
				}
				for _, s := range fc.Commands() {
					walk(s, append(slices.Clone(path), s.Name()))
				}
			}
			walk(c, []string{n})
		}
	}
	for _, tc := range topCommands {
		if !seen[tc.names[0]] {
			t.Errorf("topCommands has %s, which the tree lacks", tc.names[0])
		}
	}
}

// helpOf runs dm args in-process, with the lazy root or the whole tree,
// and returns what it printed.
func helpOf(t *testing.T, args []string, lazy bool) string {
	t.Helper()
	var out, errb bytes.Buffer
	streams := IO{Stdout: &out, Stderr: &errb, Getenv: env(nil)}
	if lazy {
		if code := Run(context.Background(), streams, testWiring, args); code != 0 {
			t.Errorf("dm %v: exit %d: %s", args, code, errb.String())
		}
		return out.String() + errb.String()
	}
	root := NewRootCommand(streams, testWiring)
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Errorf("dm %v with the whole tree: %v", args, err)
	}
	return out.String() + errb.String()
}

// invoked finds the command as cobra does: past the root's flags and
// their values, and not at all when in doubt.
func TestInvoked(t *testing.T) {
	pf := NewRootCommand(IO{}, testWiring).PersistentFlags()
	for _, c := range []struct {
		args []string
		want string // "" for the whole tree
	}{
		{[]string{"commit", "-m", "x"}, "commit"},
		{[]string{"ls"}, "list"},
		{[]string{"-c", "cfg", "log", "-n", "20"}, "log"},
		{[]string{"--config", "cfg", "-H", "--json", "log"}, "log"},
		{[]string{"--remote=hub", "--progress", "none", "push"}, "push"},
		{[]string{"--connect-timeout", "1s", "list"}, "list"},
		{[]string{"-c", "log"}, ""},
		{[]string{"-Hc", "cfg", "log"}, ""},
		{[]string{"--help", "log"}, ""},
		{[]string{"--nosuch", "log"}, ""},
		{[]string{"--", "log"}, ""},
		{[]string{"comit"}, ""},
		{[]string{"help", "commit"}, ""},
		{[]string{"__complete", "commit", ""}, ""},
		{[]string{"completion", "bash"}, ""},
		{[]string{"docs", "man", "x"}, ""},
		{[]string{}, ""},
		{nil, ""},
	} {
		got := ""
		if tc := invoked(pf, c.args); tc != nil {
			got = tc.names[0]
		}
		if got != c.want {
			t.Errorf("invoked(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

// TestQuickCommandsDocumented: the README's exit status table names the
// commands that a Ctrl-C may end by the signal's default action
// (topCommand.signals other than catchAtOnce), and no others.
func TestQuickCommandsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "| 130 |") {
			row = l
		}
	}
	if row == "" {
		t.Fatal("README.md has no row for exit status 130")
	}
	for _, c := range topCommands {
		named := strings.Contains(row, "`dm "+c.names[0]+"`")
		if late := c.signals != catchAtOnce; named != late {
			t.Errorf("dm %s: signals %d, but the README's status 130 row names it: %v", c.names[0], c.signals, named)
		}
	}
}
