package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) transfersCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "transfers",
		Short: "List unfinished incoming transfers; abort one",
		Long: `List the transfers (push to, or pull and clone by, this remote) that the
remote is receiving, or was receiving when they were cut off: the dot and
branch, whether the dot is new there (it appears when the transfer
finishes), the bytes and commits received, when the last byte came and
when what arrived expires.

What an interrupted transfer received is kept for a re-run, which then
sends only the rest, for the node's pin time after its last byte
(` + "`dm serve --transfer-pin`" + `, default 24h); after that ` + "`dm gc`" + ` removes it.
` + "`dm transfers abort`" + ` removes it at once. Nothing a branch holds is ever
removed.

With -H the fields are tab-separated: dot, branch, new (yes/no), bytes,
commits, last byte and expiry (RFC 3339), active (yes/no).`,
		Example: `  dm transfers
  dm --remote prod transfers --json
  dm transfers abort app`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.connect()
			if err != nil {
				return err
			}
			ts, err := s.c.IncomingTransfers(cmd.Context())
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), ts)
			}
			if len(ts) == 0 {
				a.info("no incoming transfers")
				return nil
			}
			t := &table{scripting: a.scripting, header: []string{"DOT", "BRANCH", "NEW", "RECEIVED", "COMMITS", "LAST BYTE", "EXPIRES", "ACTIVE"}}
			now := time.Now()
			for _, it := range ts {
				last, exp := ago(now, it.Updated), "in "+(it.Expires.Sub(now)).Round(time.Second).String()
				if a.scripting {
					last, exp = it.Updated.Format(time.RFC3339), it.Expires.Format(time.RFC3339)
				} else if !it.Expires.After(now) {
					exp = "expired (dm gc removes it)"
				}
				t.add(it.DotName().String(), it.Branch, yesNo(it.New), a.size(it.Bytes), fmt.Sprint(it.Commits), last, exp, yesNo(it.Active))
			}
			return t.write(a.out())
		},
	}
	c.AddCommand(a.transfersAbortCmd())
	return c
}

func (a *app) transfersAbortCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "abort DOT[@BRANCH]",
		Short: "End unfinished incoming transfers of a dot and free what they stored",
		Long: `End the unfinished incoming transfers of DOT (only the one into BRANCH when
given) on the remote: a transfer still receiving is cut off (at its next
bytes: one whose sender froze waits for its connection to time out), the commits
that arrived and that no branch holds are removed, and the storage they
used is freed at once (the bytes freed are printed). A dot that did not
exist there before the transfer does not appear. Commits and branches the
dot already had are never touched. Running the transfer again starts it
afresh.`,
		Example: `  dm transfers abort app
  dm --remote prod transfers abort team/db@staging`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := parseVolumeName(args[0])
			if err != nil {
				return err
			}
			if v.Subdot != "" {
				return fmt.Errorf("%w: %q names a subdot; give DOT or DOT@BRANCH", dotmesh.ErrInvalidArgument, args[0])
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			res, err := s.c.AbortIncoming(cmd.Context(), v.Dot, v.Branch)
			if err != nil {
				return s.wrap(err)
			}
			switch {
			case a.jsonOut:
				return writeJSON(a.out(), res)
			case a.scripting:
				_, err = fmt.Fprintf(a.out(), "%d\t%d\t%d\n", len(res.Aborted), res.Stats.ObjectsRemoved, res.Stats.BytesRemoved)
				return err
			}
			for _, t := range res.Aborted {
				fmt.Fprintf(a.out(), "aborted the incoming transfer of %s@%s (%s received, %d commits removed)\n", t.DotName(), t.Branch, HumanSize(t.Bytes), t.Commits)
			}
			_, err = fmt.Fprintf(a.out(), "freed %s\n", HumanSize(res.Stats.BytesRemoved))
			return err
		},
	}
}

// printIncoming tells people about incoming transfers below a listing.
func printIncoming(w io.Writer, ts []dotmesh.IncomingTransfer) {
	now := time.Now()
	for _, t := range ts {
		what := "into"
		if t.New {
			what = "creating"
		}
		fmt.Fprintf(w, "incoming: transfer %s %s@%s, %s received, %d commits, last byte %s (see dm transfers)\n", what, t.DotName(), t.Branch, HumanSize(t.Bytes), t.Commits, ago(now, t.Updated))
	}
}

func ago(now, t time.Time) string {
	return now.Sub(t).Round(time.Second).String() + " ago"
}
