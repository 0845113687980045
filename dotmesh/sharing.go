package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

var roleWords = [...]string{RoleNone: "none", RoleRead: "read", RoleWrite: "write", RoleOwner: "owner", RoleAdmin: "admin"}

func roleString(r Role) string {
	if r < 0 || int(r) >= len(roleWords) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleWords[r]
}

func parseRole(s string) (Role, error) {
	for r, w := range roleWords {
		if s == w {
			return Role(r), nil
		}
	}
	return RoleNone, fmt.Errorf("%w: role %q is not one of %s", ErrInvalidArgument, truncate(s), strings.Join(roleWords[:], ", "))
}

// visibilityRecord is stored at visibility/<dotid> for a public dot; a
// private dot has none, so received and cloned dots start private.
type visibilityRecord struct {
	Visibility Visibility `json:"visibility"`
	Changed    time.Time  `json:"changed"`
}

// capRole applies what the principal's key allows.
func capRole(p Principal, r Role) Role {
	if p.ReadOnly && r > RoleRead {
		return RoleRead
	}
	return r
}

// baseRole is the role p has on dot before grants and visibility are
// looked at, and whether those can change it.
func baseRole(p Principal, dot DotName) (Role, bool) {
	switch {
	case (p.Admin || p.User == AdminUser) && !p.Anonymous():
		return RoleAdmin, false
	case !p.Anonymous() && p.User == dot.Namespace:
		return RoleOwner, false
	}
	return RoleNone, true
}

// roleOf is Access.RoleOf.
func (n *Node) roleOf(ctx context.Context, p Principal, dot DotName) (Role, error) {
	if err := dot.Validate(); err != nil {
		return RoleNone, err
	}
	r, more := baseRole(p, dot)
	if !more {
		return capRole(p, r), nil
	}
	id, err := n.reg.dotID(ctx, dot)
	if isNotFound(err) {
		return RoleNone, nil
	}
	if err != nil {
		return RoleNone, err
	}
	if !p.Anonymous() {
		kv, err := n.store.Get(ctx, grantKey(id, p.User))
		switch {
		case err == nil:
			g, err := decode[Grant](kv)
			if err != nil {
				return RoleNone, err
			}
			r = g.Role
		case !isNotFound(err):
			return RoleNone, err
		}
	}
	if r < RoleRead {
		v, err := n.reg.visibility(ctx, id)
		if err != nil {
			return RoleNone, err
		}
		if v == VisibilityPublic {
			r = RoleRead
		}
	}
	return capRole(p, r), nil
}

// rolesOf is Access.Roles: three registry lists whatever the number of
// dots (names, the grants, the public dots), not a lookup per dot.
func (n *Node) rolesOf(ctx context.Context, p Principal, dots []DotName) ([]Role, error) {
	out := make([]Role, len(dots))
	more := false
	for i, d := range dots {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		var m bool
		out[i], m = baseRole(p, d)
		more = more || m
	}
	if !more {
		for i := range out {
			out[i] = capRole(p, out[i])
		}
		return out, nil
	}
	names, err := n.store.List(ctx, namesPrefix)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]DotID, len(names))
	for _, kv := range names {
		ids[strings.TrimPrefix(kv.Key, namesPrefix)] = DotID(kv.Value)
	}
	granted := map[DotID]Role{}
	if !p.Anonymous() {
		gs, kvs, err := listRecords[Grant](ctx, n.store, grantsPrefix)
		if err != nil {
			return nil, err
		}
		for i, g := range gs {
			id, user, _ := strings.Cut(strings.TrimPrefix(kvs[i].Key, grantsPrefix), "/")
			if user == p.User {
				granted[DotID(id)] = g.Role
			}
		}
	}
	vs, kvs, err := listRecords[visibilityRecord](ctx, n.store, visibilityPrefix)
	if err != nil {
		return nil, err
	}
	public := make(map[DotID]bool, len(vs))
	for i, v := range vs {
		public[DotID(strings.TrimPrefix(kvs[i].Key, visibilityPrefix))] = v.Visibility == VisibilityPublic
	}
	for i, d := range dots {
		if r, m := baseRole(p, d); m {
			id, ok := ids[d.Namespace+"/"+d.Name]
			if ok {
				r = granted[id]
				if r < RoleRead && public[id] {
					r = RoleRead
				}
			}
			out[i] = r
		}
		out[i] = capRole(p, out[i])
	}
	return out, nil
}

// sharing is Access.Sharing.
func (n *Node) sharing(ctx context.Context, dot DotName) (*Sharing, error) {
	if err := dot.Validate(); err != nil {
		return nil, err
	}
	id, err := n.reg.dotID(ctx, dot)
	if err != nil {
		return nil, err
	}
	v, err := n.reg.visibility(ctx, id)
	if err != nil {
		return nil, err
	}
	gs, err := n.reg.grants(ctx, id)
	if err != nil {
		return nil, err
	}
	s := &Sharing{Dot: dot, Owner: dot.Namespace, Visibility: v, Grants: make([]Grant, len(gs))}
	for i, g := range gs {
		s.Grants[i] = *g
	}
	return s, nil
}

// changeSharing applies ops to an existing dot's sharing records, guarded
// by the dot record's revision (and more conditions) so that nothing is
// left behind by a concurrent delete. Other changes to the dot record
// (a checkout) are retried over.
func (n *Node) changeSharing(ctx context.Context, dot DotName, conds []Condition, ops func(DotID) []Op) error {
	for attempt := 0; ; attempt++ {
		d, rev, err := n.reg.dotByName(ctx, dot)
		if err != nil {
			return err
		}
		_, err = n.store.Txn(ctx, append([]Condition{IfRevision(dotKey(d.ID), rev)}, conds...), ops(d.ID))
		if !errors.Is(err, ErrConflict) || attempt == 2 {
			if errors.Is(err, ErrConflict) {
				return fmt.Errorf("%w: dot %s changed while changing its sharing; try again", ErrConflict, dot)
			}
			return err
		}
	}
}

// share is Access.Share.
func (n *Node) share(ctx context.Context, dot DotName, user string, role Role, by string) error {
	if err := dot.Validate(); err != nil {
		return err
	}
	if role != RoleRead && role != RoleWrite {
		return fmt.Errorf("%w: a dot is shared as %s or %s, not %s", ErrInvalidArgument, RoleRead, RoleWrite, role)
	}
	if user == dot.Namespace || user == AdminUser {
		return fmt.Errorf("%w: user %s has every role on %s already", ErrInvalidArgument, user, dot)
	}
	_, urev, err := n.reg.user(ctx, user)
	if err != nil {
		return err
	}
	g := Grant{User: user, Role: role, By: by, Created: n.now().UTC()}
	err = n.changeSharing(ctx, dot, []Condition{IfRevision(userKey(user), urev)}, func(id DotID) []Op {
		return []Op{PutOp(grantKey(id, user), encode(g))}
	})
	if err == nil {
		n.log.InfoContext(ctx, "shared a dot", "dot", dot.String(), "user", user, "role", role.String(), "by", by)
	}
	return err
}

// unshare is Access.Unshare.
func (n *Node) unshare(ctx context.Context, dot DotName, user string) error {
	if err := dot.Validate(); err != nil {
		return err
	}
	if err := ValidateName("user", user); err != nil {
		return err
	}
	id, err := n.reg.dotID(ctx, dot)
	if err != nil {
		return err
	}
	return n.store.Delete(ctx, grantKey(id, user))
}

// setVisibility is Access.SetVisibility.
func (n *Node) setVisibility(ctx context.Context, dot DotName, v Visibility) error {
	if err := dot.Validate(); err != nil {
		return err
	}
	if v != VisibilityPrivate && v != VisibilityPublic {
		return fmt.Errorf("%w: visibility %q is not %s or %s", ErrInvalidArgument, truncate(string(v)), VisibilityPrivate, VisibilityPublic)
	}
	err := n.changeSharing(ctx, dot, nil, func(id DotID) []Op {
		if v == VisibilityPrivate {
			return []Op{DeleteOp(visibilityKey(id))}
		}
		return []Op{PutOp(visibilityKey(id), encode(visibilityRecord{Visibility: v, Changed: n.now().UTC()}))}
	})
	if err == nil {
		n.log.InfoContext(ctx, "changed a dot's visibility", "dot", dot.String(), "visibility", string(v))
	}
	return err
}
