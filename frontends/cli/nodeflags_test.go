package cli

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"
)

// TestNodeFlagsPassedOn: what `dm serve` exposes, `dm cluster init/join`
// pass on to the node they start.
func TestNodeFlagsPassedOn(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--no-ui"},
		{"--anonymous-read", "--no-ui"},
		{"--insecure", "--open-worktrees", "--anonymous-read", "--no-ui"},
	} {
		var nf nodeFlags
		f := pflag.NewFlagSet("init", pflag.ContinueOnError)
		nf.add(f)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		got := nf.args()
		want := slices.Clone(args)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("flags %q are passed on as %q", args, got)
		}
	}
}
