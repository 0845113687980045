package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func (a *app) tagCmd() *cobra.Command {
	var (
		dot, del, msg string
		sel           selection
	)
	c := &cobra.Command{
		Use:   "tag [NAME [REF]] [-d NAME] [-m MESSAGE]",
		Short: "List, create or delete tags",
		Long: `Without arguments, list the dot's tags by name: the commit each names,
when it was made and its message. With NAME, tag the commit REF names
(default HEAD of the current branch) as NAME, with -m a message. With
-d NAME, delete the tag (not the commit).

A tag is an immutable name for a commit, usable anywhere a ref is
(dm log v1, dm reset --hard v1, dm branch fix v1^). To move one, delete it
and tag again. Tags and branches share names: a tag cannot take a
branch's name, nor a branch a tag's. gc --keep N keeps tagged commits, and
tags travel with push, pull and clone.

With -H: one tag per line: name, commit, author, time (RFC 3339) and
message (first line).

With --all, tag the commit REF names (default HEAD) in each chosen dot
with the same NAME, marking a state of the whole deployment that
` + "`dm reset --all --hard NAME`" + ` brings back.` + allHelp,
		Example: `  dm tag v1
  dm tag before-migration HEAD^ -m "schema 12"
  dm tag
  dm log v1
  dm tag -d v1
  dm tag --all release-42 -m "shop 4.2 deployed"`,
		Args: usageArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if del != "" && len(args) > 0 {
				return kinded(errUsage, fmt.Errorf("usage: dm tag -d NAME (no other arguments)"))
			}
			if msg != "" && len(args) == 0 {
				return kinded(errUsage, fmt.Errorf("usage: dm tag NAME [REF] -m MESSAGE (-m needs a tag to make)"))
			}
			if del != "" {
				if err := dotmesh.ValidateName("tag", del); err != nil {
					return err
				}
			}
			if len(args) > 0 {
				if err := dotmesh.ValidateNewName("tag", args[0]); err != nil {
					return err
				}
			}
			ref := ""
			if len(args) == 2 {
				if err := validateRef(args[1]); err != nil {
					return err
				}
				ref = args[1]
			}
			if sel.all && (len(args) == 0 || del != "") {
				return kinded(errUsage, errors.New("usage: dm tag --all NAME [REF] (--all makes tags; list and delete them per dot)"))
			}
			if chosen, err := sel.check(dot, 0); err != nil || sel.all {
				if err != nil {
					return err
				}
				return a.tagAll(cmd, chosen, api.TagRequest{Name: args[0], Ref: ref, Message: msg})
			}
			s, name, err := a.connectDot(dot)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			switch {
			case del != "":
				if err := s.c.DeleteTag(ctx, name, del); err != nil {
					return s.wrap(err)
				}
				a.info("Deleted tag %s of %s.", del, name)
				return nil
			case len(args) > 0:
				t, err := s.c.CreateTag(ctx, name, api.TagRequest{Name: args[0], Ref: ref, Message: msg})
				if err != nil {
					return s.wrap(err)
				}
				if a.jsonOut {
					return writeJSON(a.out(), t)
				}
				if a.scripting {
					_, err := fmt.Fprintln(a.out(), t.Commit)
					return err
				}
				a.info("Tagged %s of %s as %s.", shortID(string(t.Commit)), name, t.Name)
				return nil
			}
			tags, err := s.c.Tags(ctx, name)
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				if tags == nil {
					tags = []dotmesh.Tag{}
				}
				return writeJSON(a.out(), tags)
			}
			if len(tags) == 0 && !a.scripting {
				a.info("No tags yet; `dm tag NAME` tags HEAD.")
				return nil
			}
			t := &table{scripting: a.scripting}
			if !a.scripting {
				t.header = []string{"TAG", "COMMIT", "CREATED", "MESSAGE"}
			}
			for _, tg := range tags {
				if a.scripting {
					t.add(tg.Name, string(tg.Commit), tg.Author, tg.Created.Format(time.RFC3339), firstLine(tg.Message))
					continue
				}
				t.add(tg.Name, shortID(string(tg.Commit)), tg.Created.Local().Format("2006-01-02 15:04"), firstLine(tg.Message))
			}
			return t.write(a.out())
		},
	}
	f := c.Flags()
	f.StringVarP(&del, "delete", "d", "", "delete tag `NAME`")
	f.StringVarP(&msg, "message", "m", "", "the tag's `MESSAGE`")
	f.StringVar(&dot, "dot", "", "act on `DOT` instead of the current dot")
	selectionFlags(c, &sel)
	return c
}
