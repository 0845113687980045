package dotmesh

import (
	"context"
	"time"
)

// Users, keys, sharing and the audit: the data a hub's access control
// needs. The engine stores it in the registry (so every node of a cluster
// enforces the same rules) and answers "which role does this principal
// have on this dot"; it does not enforce anything itself. Enforcement
// lives at the API boundary (package server's route→role table) and in
// the web UI, both of which ask Access.RoleOf before they act.
//
// Model: every user owns the namespace of their name; the admin user
// ("admin", AdminUser) owns the node and every dot. An owner shares a dot
// with other users as reader or writer, and may make it public (readable
// by every user of the node, and by anonymous callers where the frontend
// allows them). A key may be read-only: its calls never get more than
// RoleRead.

// AdminUser is the name of the node's administrator, who always exists
// and whose namespace is DefaultNamespace.
const AdminUser = DefaultNamespace

// Role is what a principal may do with a dot, in increasing order: each
// role includes those below it.
type Role int

const (
	RoleNone  Role = iota // may not see the dot
	RoleRead              // list, status, log, pull/clone from it, diff, browse
	RoleWrite             // commit, branch, checkout, reset, push into, sources
	RoleOwner             // share, visibility, delete, gc of the dot
	RoleAdmin             // the node: users, gc, verify, cluster, take-over
)

// String returns "none", "read", "write", "owner" or "admin".
func (r Role) String() string { return roleString(r) }

// MarshalText writes the role as String does, so JSON carries words.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseRole parses the words String returns; ErrInvalidArgument otherwise.
func ParseRole(s string) (Role, error) { return parseRole(s) }

// Visibility says who besides the owner and the users it is shared with
// may read a dot.
type Visibility string

const (
	VisibilityPrivate Visibility = "private" // the default
	VisibilityPublic  Visibility = "public"  // every user of the node may read
)

// Principal is who makes a call, as authenticated by a frontend. The zero
// value is the anonymous caller. KeyID is "legacy" for a user's key at
// apikeys/<user> (the admin's first key).
type Principal struct {
	User     string `json:"user,omitempty"` // "" for anonymous
	KeyID    string `json:"key_id,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"` // the key caps every role at RoleRead
	Admin    bool   `json:"admin,omitempty"`
}

// Anonymous reports whether p is the anonymous caller.
func (p Principal) Anonymous() bool { return p.User == "" }

// User is an account on the node.
type User struct {
	Name    string    `json:"name"`
	Admin   bool      `json:"admin,omitempty"`
	Created time.Time `json:"created"`
}

// KeyInfo describes an API key without its secret or hash.
type KeyInfo struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Label    string    `json:"label,omitempty"`
	ReadOnly bool      `json:"read_only,omitempty"`
	Created  time.Time `json:"created"`
}

// Grant is one user's role on a shared dot (RoleRead or RoleWrite).
type Grant struct {
	User    string    `json:"user"`
	Role    Role      `json:"role"`
	By      string    `json:"by,omitempty"`
	Created time.Time `json:"created"`
}

// Sharing is who may use a dot besides the admin.
type Sharing struct {
	Dot        DotName    `json:"-"`
	Owner      string     `json:"owner"` // the namespace's user
	Visibility Visibility `json:"visibility"`
	Grants     []Grant    `json:"grants,omitempty"` // by user name
}

// AuditRecord is one change made through a frontend: who, when, what.
// Append stores Dot as ns/name, also when given as a short name.
type AuditRecord struct {
	ID     string    `json:"id"` // sortable: later records have larger ids
	Time   time.Time `json:"time"`
	User   string    `json:"user"`
	Node   string    `json:"node,omitempty"`
	Action string    `json:"action"`        // "commit", "push", "reset", "delete", "share", "user-add"...
	Dot    string    `json:"dot,omitempty"` // ns/name; empty for node-wide actions
	Branch string    `json:"branch,omitempty"`
	Commit string    `json:"commit,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// AuditQuery selects audit records, newest first.
type AuditQuery struct {
	Dot    *DotName // nil: every record
	Before string   // an AuditRecord.ID: only older records (paging)
	Limit  int      // 0: a default of 100
}

// Users is the node's store of user accounts. AdminUser always exists.
type Users struct{ n *Node }

// Users returns the node's user accounts.
func (n *Node) Users() *Users { return &Users{n: n} }

// Add creates user name (a name as ValidateNewName allows) and a first
// API key labelled label (at most 100 printable characters), returning
// the key's secret: the only time it is available. ErrAlreadyExists if
// the user exists; AdminUser always does.
func (u *Users) Add(ctx context.Context, name, label string) (*User, KeyInfo, string, error) {
	return u.n.addUser(ctx, name, label)
}

// Get returns one user, or ErrNotFound.
func (u *Users) Get(ctx context.Context, name string) (*User, error) { return u.n.getUser(ctx, name) }

// List returns every user, by name, AdminUser included.
func (u *Users) List(ctx context.Context) ([]User, error) { return u.n.listUsers(ctx) }

// Remove deletes a user, their keys and the grants made to them. A user
// whose namespace still holds dots is refused (a NamespaceInUseError);
// AdminUser cannot be removed (ErrInvalidArgument).
func (u *Users) Remove(ctx context.Context, name string) error { return u.n.removeUser(ctx, name) }

// Issue makes a new API key for user (who must exist: ErrNotFound) and
// returns its secret, the only time it is available; only its hash
// (HashKey) is stored.
func (a *APIKeys) Issue(ctx context.Context, user, label string, readOnly bool) (KeyInfo, string, error) {
	return a.n.issueKey(ctx, user, label, readOnly)
}

// List returns user's keys, oldest first.
func (a *APIKeys) List(ctx context.Context, user string) ([]KeyInfo, error) {
	return a.n.listKeys(ctx, user)
}

// Revoke deletes one of user's keys; later calls with it are refused.
// ErrNotFound if user has no key id.
func (a *APIKeys) Revoke(ctx context.Context, user, id string) error {
	return a.n.revokeKey(ctx, user, id)
}

// Authenticate returns the principal a secret belongs to. user may be
// empty (a bearer token names no user). Unknown users, wrong and revoked
// keys all fail alike, wrapping ErrUnauthorized, in the same time.
func (a *APIKeys) Authenticate(ctx context.Context, user, secret string) (Principal, error) {
	return a.n.authenticate(ctx, user, secret)
}

// Access is the sharing of dots and the roles that follow from it.
type Access struct{ n *Node }

// Access returns the node's sharing records.
func (n *Node) Access() *Access { return &Access{n: n} }

// RoleOf returns p's role on dot. A dot that does not exist gets the role
// p would have on a new dot of that name (RoleOwner in p's own
// namespace, RoleNone elsewhere for non-admins), so that callers can
// refuse without telling whether it exists.
func (a *Access) RoleOf(ctx context.Context, p Principal, dot DotName) (Role, error) {
	return a.n.roleOf(ctx, p, dot)
}

// Roles is RoleOf for many dots at once (a list page), in order.
func (a *Access) Roles(ctx context.Context, p Principal, dots []DotName) ([]Role, error) {
	return a.n.rolesOf(ctx, p, dots)
}

// Sharing returns the owner, visibility and grants of an existing dot.
func (a *Access) Sharing(ctx context.Context, dot DotName) (*Sharing, error) {
	return a.n.sharing(ctx, dot)
}

// Share gives user (who must exist) RoleRead or RoleWrite on dot,
// replacing an earlier grant. by is recorded with the grant. Sharing with
// the dot's owner or the admin is refused (ErrInvalidArgument): they have
// every role already.
func (a *Access) Share(ctx context.Context, dot DotName, user string, role Role, by string) error {
	return a.n.share(ctx, dot, user, role, by)
}

// Unshare removes user's grant on dot; not an error if there is none.
func (a *Access) Unshare(ctx context.Context, dot DotName, user string) error {
	return a.n.unshare(ctx, dot, user)
}

// SetVisibility makes dot public or private.
func (a *Access) SetVisibility(ctx context.Context, dot DotName, v Visibility) error {
	return a.n.setVisibility(ctx, dot, v)
}

// Audit is the node's record of changes made through its frontends.
type Audit struct{ n *Node }

// Audit returns the node's audit log.
func (n *Node) Audit() *Audit { return &Audit{n: n} }

// Append records r, filling ID, Time and Node when empty.
func (a *Audit) Append(ctx context.Context, r AuditRecord) error { return a.n.appendAudit(ctx, r) }

// List returns records matching q, newest first, and the ID to pass as
// Before for the next page ("" when there is none). Limit is capped at
// 1000.
func (a *Audit) List(ctx context.Context, q AuditQuery) ([]AuditRecord, string, error) {
	return a.n.listAudit(ctx, q)
}
