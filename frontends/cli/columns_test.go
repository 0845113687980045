package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestScriptingColumnsDocumented: each command with -H output names its
// columns, in order, in its help; where an in-process node can run the
// command, every line it prints with -H has that many fields.
func TestScriptingColumnsDocumented(t *testing.T) {
	e := withPeer(t)

	found := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		found[c.CommandPath()] = true
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(NewRootCommand(IO{}, testWiring))
	for cmd, o := range scriptingColumns() {
		if !found[cmd] {
			t.Errorf("scriptingColumns names %q, which is no command", cmd)
			continue
		}
		help := strings.Join(strings.Fields(mustRun(t, e, append(strings.Fields(cmd)[1:], "--help")...)), " ")
		if !strings.Contains(help, "-H prints "+o.line+", tab-separated: ") {
			t.Errorf("%s --help does not say what -H prints", cmd)
		}
		at := 0
		for _, col := range o.cols {
			i := strings.Index(help[at:], col)
			if i < 0 {
				t.Errorf("%s --help does not name the column %q after the ones before it", cmd, col)
				break
			}
			at += i + len(col)
		}
	}

	// Real output, one command at a time, in an order that gives each
	// something to print.
	mustRun(t, e, "init", "app", "-H")
	p := strings.TrimSpace(mustRun(t, e, "path", "app.web"))
	if err := os.WriteFile(filepath.Join(p, "f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := []struct {
		cmd    string
		args   []string
		fields int // when not the columns': a form the help's other sentence describes
	}{
		{"dm status", []string{"status"}, 6}, // file: KIND, SUBDOT and four
		{"dm commit", []string{"commit", "-m", "one"}, 0},
		{"dm tag", []string{"tag", "v1"}, 1}, // tagging: the commit
		{"dm tag", []string{"tag"}, 0},
		{"dm init", []string{"init", "other"}, 0},
		{"dm list", []string{"list"}, 0},
		{"dm dot show", []string{"dot", "show", "app"}, 0},
		{"dm log", []string{"log", "--dot", "app"}, 0},
		{"dm reset", []string{"reset", "--dot", "app", "--hard", "HEAD"}, 0},
		{"dm branch", []string{"branch", "--dot", "app"}, 0},
		{"dm push", []string{"push", "b", "app"}, 0},
		{"dm clone", []string{"clone", "b", "app", "--local-name", "copy"}, 0},
		{"dm pull", []string{"pull", "b", "app"}, 0},
		{"dm gc", []string{"gc"}, 0},
		{"dm remote", []string{"remote"}, 0},
		{"dm user add", []string{"user", "add", "bob"}, 0},
		{"dm user list", []string{"user", "list"}, 0},
		{"dm key add", []string{"key", "add"}, 0},
		{"dm key list", []string{"key", "list"}, 0},
		{"dm whoami", []string{"whoami"}, 0},
		{"dm audit", []string{"audit"}, 0},
		{"dm version", []string{"version"}, 0},
	}
	for _, r := range runs {
		want := len(scriptingColumns()[r.cmd].cols)
		if r.fields != 0 {
			want = r.fields
		}
		out := mustRun(t, e, append(r.args, "-H")...)
		if strings.TrimSpace(out) == "" {
			t.Errorf("dm %v -H printed nothing", r.args)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if n := len(strings.Split(line, "\t")); n != want {
				t.Errorf("dm %v -H: %d fields in %q; its help names %d columns", r.args, n, line, want)
			}
		}
	}
}
