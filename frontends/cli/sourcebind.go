package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// bindFlags are `dm source bind`'s and `dm clone --bind`'s: which
// templated subdot gets another URL than its template's.
type bindFlags struct {
	maps []string // SUBDOT=URL
}

func (f *bindFlags) add(c *cobra.Command) {
	c.Flags().StringArrayVar(&f.maps, "map", nil, "`SUBDOT=URL`: bind SUBDOT to URL, not to its template's (repeatable; passwords go here)")
}

// parse checks every --map before anything is bound.
func (f *bindFlags) parse() (map[string]string, error) {
	out := map[string]string{}
	for _, m := range f.maps {
		subdot, url, ok := strings.Cut(m, "=")
		if !ok || url == "" {
			return nil, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("--map %q: want SUBDOT=URL", m))
		}
		if err := dotmesh.ValidateSubdot(subdot); err != nil {
			return nil, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("--map %q: %w", m, err))
		}
		if _, dup := out[subdot]; dup {
			return nil, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("--map names subdot %s twice", subdot))
		}
		out[subdot] = url
	}
	return out, nil
}

func (a *app) sourceBindCmd() *cobra.Command {
	var (
		all    bool
		dot    string
		branch string
		f      bindFlags
	)
	c := &cobra.Command{
		Use:   "bind --all [--dot DOT] [--branch BRANCH] [--map SUBDOT=URL]...",
		Short: "Bind every subdot the head commit has a source template for",
		Long: `Every commit of a dot with sources records each binding as a template (the
kind and the URL without its password), and templates travel with push,
pull and clone. On the receiving node, bind --all binds each templated
subdot of the branch's head commit to the database of the same kind and
URL there, or to the URL given with --map SUBDOT=URL (which may hold a
password; none travels). Subdots bound already are left as they are. The
next reset loads the commit's dumps into the databases; ` + "`dm clone --bind`" + ` does
both at clone time.`,
		Example: `  dm source bind --all
  dm source bind --all --dot app --map db='postgres://app:secret@db:5432/shop'`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !all {
				return kinded(dotmesh.ErrInvalidArgument, errors.New("say --all to bind every subdot the head commit has a template for"))
			}
			maps, err := f.parse()
			if err != nil {
				return err
			}
			s, name, err := a.connectDot(dot)
			if err != nil {
				return err
			}
			return a.bindTemplates(cmd.Context(), s, name, branch, maps)
		},
	}
	c.Flags().BoolVar(&all, "all", false, "bind every templated subdot (required)")
	c.Flags().StringVar(&dot, "dot", "", "the `DOT` (default: the current dot)")
	c.Flags().StringVar(&branch, "branch", "", "bind `BRANCH`'s subdots instead of the current branch's")
	f.add(c)
	return c
}

// bindTemplates binds the templated subdots of the head commit of name's
// branch, reporting each. A failed binding does not stop the others;
// the error says which failed.
func (a *app) bindTemplates(ctx context.Context, s *session, name dotmesh.DotName, branch string, maps map[string]string) error {
	log, err := s.c.Log(ctx, name, branch, 1)
	if err != nil {
		return s.wrap(err)
	}
	if len(log) == 0 {
		return kinded(dotmesh.ErrNotFound, fmt.Errorf("%s has no commits: there are no source templates to bind", name))
	}
	head := log[0]
	tmpls := dotmesh.SourceTemplates(head.Info)
	known := map[string]bool{}
	for _, t := range tmpls {
		known[t.Subdot] = true
	}
	for subdot := range maps {
		if !known[subdot] {
			return kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("--map %s: commit %s of %s has no source template for subdot %s", subdot, shortID(string(head.ID)), name, subdot))
		}
	}
	if len(tmpls) == 0 {
		a.info("Commit %s of %s has no source templates: nothing to bind.", shortID(string(head.ID)), name)
		return nil
	}
	bound, err := s.c.Sources(ctx, name, branch)
	if err != nil {
		return s.wrap(err)
	}
	have := map[string]dotmesh.Source{}
	for _, b := range bound {
		have[b.Subdot] = b
	}
	var failed, done []string
	for _, t := range tmpls {
		v := dotmesh.VolumeName{Dot: name, Branch: branch, Subdot: t.Subdot}
		if b, ok := have[t.Subdot]; ok {
			a.info("%s: bound already (%s %s)", t.Subdot, b.Kind, b.URL)
			continue
		}
		url := t.URL
		if m, ok := maps[t.Subdot]; ok {
			url = m
		}
		if err := s.c.AddSource(ctx, v, dotmesh.SourceSpec{Kind: t.Kind, URL: url}); err != nil {
			fmt.Fprintf(a.io.Stderr, "%s: %v\n", t.Subdot, s.wrap(err))
			failed = append(failed, t.Subdot)
			continue
		}
		done = append(done, t.Subdot)
	}
	if len(done) > 0 { // as the node lists them: passwords redacted
		now, err := s.c.Sources(ctx, name, branch)
		if err != nil {
			return s.wrap(err)
		}
		for _, b := range now {
			if slices.Contains(done, b.Subdot) {
				a.info("%s: bound to %s %s", b.Subdot, b.Kind, b.URL)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not bind %s (see above); the others are bound", strings.Join(failed, ", "))
	}
	return nil
}
