package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) dotLabelCmd() *cobra.Command {
	var overwrite bool
	c := &cobra.Command{
		Use:   "label DOT [KEY=VALUE ...] [KEY- ...] [--overwrite]",
		Short: "Set or remove a dot's labels, or show them",
		Long: `Set labels on DOT (KEY=VALUE) and remove them (KEY-), as kubectl label does;
with no KEY, show DOT's labels. Labels choose dots for the verbs that act
on many at once: ` + "`dm commit --all --label KEY=VALUE`" + `, push, pull, reset and
tag, and ` + "`dm list --label`" + `.

A key is a name of at most 63 letters, digits, '-', '_' and '.', beginning
and ending with a letter or digit, optionally after a DNS subdomain prefix
and '/' (example.com/tier); a value is empty or such a name. Changing the
value of a label the dot has needs --overwrite. Labels are kept in the
node's registry with the dot (shared by a cluster's nodes); they do not
travel with push, pull or clone.`,
		Example: `  dm dot label app tier=db app=shop
  dm dot label app tier=cache --overwrite
  dm dot label app tier-
  dm dot label app
  dm list --show-labels`,
		Args: usageArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parseDotName(args[0]); err != nil {
				return err
			}
			var ch dotmesh.LabelChange
			if len(args) > 1 {
				var err error
				if ch, err = dotmesh.ParseLabelChange(args[1:]); err != nil {
					return err
				}
			} else if overwrite {
				return kinded(errUsage, fmt.Errorf("usage: %s (--overwrite needs a KEY=VALUE)", cmd.UseLine()))
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			name, _ := s.dotArg(args[0])
			var d *dotmesh.Dot
			if len(args) == 1 {
				st, err := s.c.Status(cmd.Context(), name)
				if err != nil {
					return s.wrap(err)
				}
				d = st.Dot
			} else if d, err = s.c.Label(cmd.Context(), name, api.LabelRequest{Set: ch.Set, Remove: ch.Remove, Overwrite: overwrite}); err != nil {
				if errors.Is(err, dotmesh.ErrAlreadyExists) {
					return fmt.Errorf("%w; --overwrite changes it", s.wrap(err))
				}
				return s.wrap(err)
			}
			switch {
			case a.jsonOut:
				labels := d.Labels
				if labels == nil {
					labels = map[string]string{}
				}
				return writeJSON(a.out(), labels)
			case a.scripting:
				for _, k := range sortedKeys(d.Labels) {
					fmt.Fprintf(a.out(), "%s\t%s\n", k, d.Labels[k])
				}
				return nil
			case len(args) > 1:
				a.info("Labels of %s: %s", name, labelList(d.Labels))
			default:
				fmt.Fprintln(a.out(), labelList(d.Labels))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&overwrite, "overwrite", false, "change the value of a label the dot has")
	return c
}

// labelList writes labels as k=v,k=v (kubectl's --show-labels), or
// <none>.
func labelList(labels map[string]string) string {
	if len(labels) == 0 {
		return "<none>"
	}
	parts := make([]string, 0, len(labels))
	for _, k := range sortedKeys(labels) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}
