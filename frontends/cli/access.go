package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Users, keys, sharing and the audit of a hub: the node's access API
// (api/access.go), spoken to the current remote like every other command.
// Names are checked here first, so bad input fails before any call.

// ParseUserName checks the name of an existing user (a namespace name).
func ParseUserName(s string) (string, error) {
	if err := dotmesh.ValidateName("user", s); err != nil {
		return "", err
	}
	return s, nil
}

// ParseNewUserName checks the name of a user about to be made: it becomes
// the user's namespace, so it follows the rules of a new namespace.
func ParseNewUserName(s string) (string, error) {
	if err := dotmesh.ValidateNewName("user", s); err != nil {
		return "", err
	}
	return s, nil
}

// ParseShareRole turns --read/--write into the role a share grants;
// exactly one of them must be given.
func ParseShareRole(read, write bool) (dotmesh.Role, error) {
	switch {
	case read && write:
		return dotmesh.RoleNone, fmt.Errorf("%w: give --read or --write, not both (--write includes reading)", dotmesh.ErrInvalidArgument)
	case read:
		return dotmesh.RoleRead, nil
	case write:
		return dotmesh.RoleWrite, nil
	}
	return dotmesh.RoleNone, fmt.Errorf("%w: say what to share: --read (clone, pull, log) or --write (also push, commit, reset)", dotmesh.ErrInvalidArgument)
}

// ParseVisibility parses "public" or "private".
func ParseVisibility(s string) (dotmesh.Visibility, error) {
	switch v := dotmesh.Visibility(s); v {
	case dotmesh.VisibilityPublic, dotmesh.VisibilityPrivate:
		return v, nil
	}
	return "", fmt.Errorf("%w: visibility %q must be public (every user of the node may read the dot) or private (only its owner and the users it is shared with)", dotmesh.ErrInvalidArgument, truncated(s))
}

// ParseLabel checks a key's label: one line of printable text, short
// enough for a table.
func ParseLabel(s string) (string, error) {
	if len(s) > 128 {
		return "", fmt.Errorf("%w: label %q is %d bytes long; the limit is 128", dotmesh.ErrInvalidArgument, truncated(s), len(s))
	}
	if printable(s) != s || strings.TrimSpace(s) != s {
		return "", fmt.Errorf("%w: label %q must be one line of printable text without leading or trailing spaces", dotmesh.ErrInvalidArgument, truncated(s))
	}
	return s, nil
}

// ParseAuditID checks an audit record id given to --before: ids are
// letters, digits and '-', '_', '.', ':' (what the node makes).
func ParseAuditID(s string) (string, error) {
	ok := s != "" && len(s) <= 128
	for _, r := range s {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r))
	}
	if !ok {
		return "", fmt.Errorf("%w: %q is not an audit record id; `dm audit --json` shows them (and the next page's in \"next\")", dotmesh.ErrInvalidArgument, truncated(s))
	}
	return s, nil
}

func truncated(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// dotArg parses a dot named on the command line as the session's user
// means it: without a namespace, the user's own (admin's is "admin").
func (s *session) dotArg(raw string) (dotmesh.DotName, error) {
	return ownDot(raw, s.remote.User)
}

// ownDot parses a dot name as user reads it on their node: without a
// namespace, user's own, as the node itself reads names.
func ownDot(raw, user string) (dotmesh.DotName, error) {
	d, err := parseDotName(raw)
	if err != nil {
		return d, err
	}
	if !strings.Contains(raw, "/") && user != "" {
		d.Namespace = user
	}
	return d, nil
}

// keyUser is the user whose keys `dm key` manages: --user, else the
// remote's own.
func (s *session) keyUser(flag string) string {
	if flag != "" {
		return flag
	}
	return s.remote.User
}

func (a *app) userCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "user",
		Short: "Add, list and remove the users of a node (admin)",
		Long: `A node (a hub) has users besides its admin. Each user owns the namespace
of their name: ` + "`dm push hub app`" + ` by alice lands in alice/app. Users see
and change only their own dots and those shared with them (` + "`dm dot share`" + `)
or made public (` + "`dm dot visibility`" + `). Only an admin manages users.`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.userAddCmd(), a.userListCmd(), a.userRemoveCmd())
	return c
}

func (a *app) userAddCmd() *cobra.Command {
	var label string
	c := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a user and print their first API key",
		Long: `Create user NAME (letters, digits, '_' and '-', starting with a letter or
digit) with a first API key labelled --label, and print the key: this is
the only time it is shown (the node keeps only its hash). Give it to the
user, who adds the node as a remote on their machine with it.

With -H only the key is printed; --json prints the user, the key's id and
the secret.`,
		Example: `  dm user add alice
  dm user add ci --label "build server" -H > ci.key`,
		Args: usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := ParseNewUserName(args[0])
			if err != nil {
				return err
			}
			if label, err = ParseLabel(label); err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			res, err := s.c.AddUser(cmd.Context(), name, label)
			if err != nil {
				return s.wrap(err)
			}
			return a.printNewKey(s, res, fmt.Sprintf("Added user %s.", res.User.Name))
		},
	}
	c.Flags().StringVar(&label, "label", "", "`LABEL` of the user's first key (say where it will be used)")
	return c
}

// printNewKey shows a new key's secret once, with how to use it.
func (a *app) printNewKey(s *session, res *api.NewKeyResponse, done string) error {
	if a.jsonOut {
		return writeJSON(a.out(), res)
	}
	if a.scripting {
		_, err := fmt.Fprintln(a.out(), res.Secret)
		return err
	}
	kind := "a full key"
	if res.Key.ReadOnly {
		kind = "a read-only key (it may list, clone and pull, nothing else)"
	}
	w := a.out()
	fmt.Fprintf(w, "%s Key %s of %s is %s. It is shown only this once:\n\n    %s\n\n", done, res.Key.ID, res.User.Name, kind, res.Secret)
	ca := ""
	if s.remote.CACert != "" {
		ca = " --ca-cert CA.pem"
	} else if s.remote.TLS {
		ca = " --tls"
	}
	fmt.Fprintf(w, "On %s's machine, add this node as a remote with it:\n\n    DOTMESH_PASSWORD=KEY dm remote add %s %s@%s%s\n", res.User.Name, s.remoteName, res.User.Name, s.remote.Address, ca)
	return nil
}

func (a *app) userListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the node's users",
		Long: `List the node's users: name, whether they are an admin, and when they
were made. With -H the fields are tab-separated, the time in RFC 3339.`,
		Example: `  dm user list
  dm --remote hub user list --json`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.connect()
			if err != nil {
				return err
			}
			users, err := s.c.Users(cmd.Context())
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				if users == nil {
					users = []dotmesh.User{}
				}
				return writeJSON(a.out(), users)
			}
			t := &table{scripting: a.scripting, header: []string{"USER", "ADMIN", "CREATED"}}
			for _, u := range users {
				t.add(u.Name, yesNo(u.Admin), a.when(u.Created))
			}
			return t.write(a.out())
		},
	}
}

// when renders a time: RFC 3339 for scripts, local date and time for
// people.
func (a *app) when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if a.scripting {
		return t.UTC().Format(time.RFC3339)
	}
	return t.Local().Format(time.DateTime)
}

func (a *app) userRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a user, their keys and what was shared with them",
		Long: `Remove user NAME: their keys stop working at once, and the shares made to
them go. A user whose namespace still holds dots is refused; delete those
first (` + "`dm dot delete NAME/DOT`" + `). The admin cannot be removed.`,
		Example: `  dm user remove alice`,
		Args:    usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := ParseUserName(args[0])
			if err != nil {
				return err
			}
			if name == dotmesh.AdminUser {
				return kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("the admin user cannot be removed"))
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			if err := s.c.RemoveUser(cmd.Context(), name); err != nil {
				return s.wrap(err)
			}
			a.info("Removed user %s.", name)
			return nil
		},
	}
}

func (a *app) keyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Add, list and revoke your API keys",
		Long: `API keys of the remote's user (an admin may name another with --user).
A user can hold several: a full one on a laptop, a read-only one for a CI
job that only clones. Keys are shown once, when made; the node keeps only
their hashes. A revoked key is refused from then on.`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	c.AddCommand(a.keyAddCmd(), a.keyListCmd(), a.keyRevokeCmd())
	return c
}

// userFlag adds --user to a key command and checks it.
func userFlag(c *cobra.Command, user *string) {
	c.Flags().StringVar(user, "user", "", "the `USER` whose keys these are (default: the remote's user; others need an admin)")
}

func checkUserFlag(user string) error {
	if user == "" {
		return nil
	}
	_, err := ParseUserName(user)
	return err
}

func (a *app) keyAddCmd() *cobra.Command {
	var user, label string
	var readOnly bool
	c := &cobra.Command{
		Use:   "add",
		Short: "Make another API key and print it once",
		Long: `Make another API key for the remote's user (or --user) and print it: the
only time it is shown. --read-only makes a key that may list, show, log,
clone and pull, and is refused for everything that changes something (a
CI job's key). --name labels it, to tell keys apart in ` + "`dm key list`" + `.

With -H only the key is printed; --json prints its id and the secret.`,
		Example: `  dm key add --name laptop
  dm key add --read-only --name ci -H > ci.key
  dm key add --user alice --name recovery`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkUserFlag(user); err != nil {
				return err
			}
			label, err := ParseLabel(label)
			if err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			res, err := s.c.AddKey(cmd.Context(), s.keyUser(user), label, readOnly)
			if err != nil {
				return s.wrap(err)
			}
			return a.printNewKey(s, res, "Made a new key.")
		},
	}
	c.Flags().BoolVar(&readOnly, "read-only", false, "the key may only read (list, show, log, clone, pull)")
	c.Flags().StringVar(&label, "name", "", "`LABEL` of the key (where it is used)")
	userFlag(c, &user)
	return c
}

func (a *app) keyListCmd() *cobra.Command {
	var user string
	c := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List API keys (never their secrets)",
		Long: `List the keys of the remote's user (or --user): id, label, whether it is
read-only, and when it was made. The secrets are never shown again.`,
		Example: `  dm key list
  dm key list --user alice --json`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkUserFlag(user); err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			keys, err := s.c.Keys(cmd.Context(), s.keyUser(user))
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				if keys == nil {
					keys = []dotmesh.KeyInfo{}
				}
				return writeJSON(a.out(), keys)
			}
			t := &table{scripting: a.scripting, header: []string{"ID", "LABEL", "KIND", "CREATED"}}
			for _, k := range keys {
				t.add(k.ID, k.Label, keyKind(k.ReadOnly), a.when(k.Created))
			}
			return t.write(a.out())
		},
	}
	userFlag(c, &user)
	return c
}

func keyKind(readOnly bool) string {
	if readOnly {
		return "read-only"
	}
	return "full"
}

func (a *app) keyRevokeCmd() *cobra.Command {
	var user string
	c := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key",
		Long: `Revoke the key ID (from ` + "`dm key list`" + `) of the remote's user (or --user).
Every later call with it is refused. Revoking the key this remote uses
locks this remote out: add it again with another key.`,
		Example: `  dm key revoke k_3f2a9c`,
		Args:    usageArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkUserFlag(user); err != nil {
				return err
			}
			if err := dotmesh.ValidateName("key id", args[0]); err != nil {
				return err
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			if err := s.c.RevokeKey(cmd.Context(), s.keyUser(user), args[0]); err != nil {
				return s.wrap(err)
			}
			a.info("Revoked key %s of %s.", args[0], s.keyUser(user))
			return nil
		},
	}
	userFlag(c, &user)
	return c
}

func (a *app) whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the current remote's key is",
		Long: `Show the user the current remote's API key belongs to, whether the user
is an admin, and which key it is (its id and whether it is read-only), as
the node sees it.`,
		Example: `  dm whoami
  dm --remote hub whoami --json`,
		Args: usageArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.connect()
			if err != nil {
				return err
			}
			p, err := s.c.Me(cmd.Context())
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), struct {
					Remote string `json:"remote"`
					*dotmesh.Principal
				}{s.remoteName, p})
			}
			user := p.User
			if p.Anonymous() {
				user = "(anonymous)"
			}
			key := keyKind(p.ReadOnly)
			if p.KeyID != "" {
				key = p.KeyID + " (" + key + ")"
			}
			t := &table{scripting: a.scripting}
			t.add("Remote:", s.remoteName+" ("+s.remote.Address+")")
			t.add("User:", user)
			t.add("Admin:", yesNo(p.Admin))
			t.add("Key:", key)
			return t.write(a.out())
		},
	}
}

func (a *app) dotShareCmd() *cobra.Command {
	var read, write bool
	c := &cobra.Command{
		Use:   "share NS/DOT USER --read|--write",
		Short: "Give a user read or write access to a dot",
		Long: `Give USER a role on the dot NS/DOT (without NS/, your own namespace):
--read lets them list, show, log, clone and pull it; --write also push
into it, commit, branch and reset. It replaces an earlier share to USER.
Only the dot's owner (the user of its namespace) or an admin can share.`,
		Example: `  dm dot share alice/app bob --read
  dm dot share app ci --write`,
		Args: usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := ParseUserName(args[1])
			if err != nil {
				return err
			}
			role, err := ParseShareRole(read, write)
			if err != nil {
				return err
			}
			s, dot, err := a.connectDot(args[0])
			if err != nil {
				return err
			}
			if err := s.c.Share(cmd.Context(), dot, user, role); err != nil {
				return s.wrap(err)
			}
			a.info("Shared %s with %s (%s).", dot, user, role)
			return nil
		},
	}
	c.Flags().BoolVar(&read, "read", false, "USER may list, show, log, clone and pull the dot")
	c.Flags().BoolVar(&write, "write", false, "USER may also push into it, commit, branch and reset")
	return c
}

func (a *app) dotUnshareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unshare NS/DOT USER",
		Short: "Take back what a dot was shared with a user",
		Long: `Remove USER's share of the dot NS/DOT. Their next call is refused (unless
the dot is public, which still lets them read). Not an error when there
was no share.`,
		Example: `  dm dot unshare alice/app bob`,
		Args:    usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := ParseUserName(args[1])
			if err != nil {
				return err
			}
			s, dot, err := a.connectDot(args[0])
			if err != nil {
				return err
			}
			if err := s.c.Unshare(cmd.Context(), dot, user); err != nil {
				return s.wrap(err)
			}
			a.info("%s is no longer shared with %s.", dot, user)
			return nil
		},
	}
}

func (a *app) dotVisibilityCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "visibility NS/DOT public|private",
		Short: "Make a dot readable by every user, or private again",
		Long: `public: every user of the node may read the dot (list, show, log, clone,
pull), and anonymous callers too where the node allows them
(` + "`dm serve --anonymous-read`" + `). private (the default): only its owner, the
users it is shared with, and admins.`,
		Example: `  dm dot visibility alice/demo public`,
		Args:    usageArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := ParseVisibility(args[1])
			if err != nil {
				return err
			}
			s, dot, err := a.connectDot(args[0])
			if err != nil {
				return err
			}
			if err := s.c.SetVisibility(cmd.Context(), dot, v); err != nil {
				return s.wrap(err)
			}
			a.info("%s is now %s.", dot, v)
			return nil
		},
	}
}

// sharingShow is `dm dot sharing --json`.
type sharingShow struct {
	Dot string `json:"dot"`
	*dotmesh.Sharing
}

func (a *app) dotSharingCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sharing [NS/DOT]",
		Short: "Show a dot's owner, visibility and shares",
		Long: `Show who may use the dot NS/DOT (default: the current dot): its owner,
whether it is public, and each user it is shared with, with their role,
who shared it and when. Only the owner and admins may see this.

With -H: a line "owner OWNER", a line "visibility V", then a line
"grant USER ROLE BY TIME" per share, tab-separated.`,
		Example: `  dm dot sharing alice/app
  dm dot sharing --json`,
		Args: usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			explicit := ""
			if len(args) == 1 {
				explicit = args[0]
			}
			s, dot, err := a.connectDot(explicit)
			if err != nil {
				return err
			}
			sh, err := s.c.Sharing(cmd.Context(), dot)
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				return writeJSON(a.out(), sharingShow{Dot: dot.String(), Sharing: sh})
			}
			w := a.out()
			if a.scripting {
				t := &table{scripting: true}
				t.add("owner", sh.Owner)
				t.add("visibility", string(sh.Visibility))
				for _, g := range sh.Grants {
					t.add("grant", g.User, g.Role.String(), g.By, a.when(g.Created))
				}
				return t.write(w)
			}
			t := &table{}
			t.add("Dot:", dot.String())
			t.add("Owner:", sh.Owner)
			t.add("Visibility:", string(sh.Visibility))
			if err := t.write(w); err != nil {
				return err
			}
			if len(sh.Grants) == 0 {
				fmt.Fprintln(w, "\nShared with nobody.")
				return nil
			}
			fmt.Fprintln(w)
			g := &table{header: []string{"USER", "ROLE", "BY", "SINCE"}}
			for _, gr := range sh.Grants {
				g.add(gr.User, gr.Role.String(), gr.By, a.when(gr.Created))
			}
			return g.write(w)
		},
	}
}

func (a *app) auditCmd() *cobra.Command {
	var limit int
	var before string
	c := &cobra.Command{
		Use:   "audit [NS/DOT]",
		Short: "Show the record of changes: who did what, when",
		Long: `Show the node's audit records, newest first: every change made through its
API (push, commit, reset, delete, share, users and keys...), with who made
it, when, on which dot and branch, and the commit. With NS/DOT only that
dot's records, which its owner may see; the whole record needs an admin.

--limit bounds the records shown (default 100); when there are more, the
last line says how to see the next page (--before ID). With -H the fields
are tab-separated: time (RFC 3339), user, action, dot, branch, commit,
detail, id.`,
		Example: `  dm audit
  dm audit alice/app --limit 20
  dm --remote hub audit --json`,
		Args: usageArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if _, err := parseDotName(args[0]); err != nil {
					return err
				}
			}
			if limit < 1 || limit > 10000 {
				return fmt.Errorf("%w: --limit %d must be from 1 to 10000", dotmesh.ErrInvalidArgument, limit)
			}
			if before != "" {
				if _, err := ParseAuditID(before); err != nil {
					return err
				}
			}
			s, err := a.connect()
			if err != nil {
				return err
			}
			q := dotmesh.AuditQuery{Before: before, Limit: limit}
			if len(args) == 1 {
				dot, _ := s.dotArg(args[0])
				q.Dot = &dot
			}
			page, err := s.c.Audit(cmd.Context(), q)
			if err != nil {
				return s.wrap(err)
			}
			if a.jsonOut {
				if page.Records == nil {
					page.Records = []dotmesh.AuditRecord{}
				}
				return writeJSON(a.out(), page)
			}
			t := &table{scripting: a.scripting, header: []string{"TIME", "USER", "ACTION", "DOT", "BRANCH", "COMMIT", "DETAIL"}}
			for _, r := range page.Records {
				if a.scripting {
					t.add(a.when(r.Time), r.User, r.Action, r.Dot, r.Branch, r.Commit, r.Detail, r.ID)
					continue
				}
				t.add(a.when(r.Time), r.User, r.Action, dashIfEmpty(r.Dot), dashIfEmpty(r.Branch), dashIfEmpty(shortID(r.Commit)), r.Detail)
			}
			if err := t.write(a.out()); err != nil {
				return err
			}
			if page.Next != "" && !a.scripting {
				fmt.Fprintf(a.out(), "\nOlder records: add --before %s\n", page.Next)
			}
			return nil
		},
	}
	c.Flags().IntVar(&limit, "limit", 100, "show at most `N` records")
	c.Flags().StringVar(&before, "before", "", "only records older than the record `ID` (the next page)")
	return c
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
