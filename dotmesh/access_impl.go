package dotmesh

import (
	"context"
	"fmt"
)

// CONTRACT STUB: replaced by the core access stream (h-core). Never merged to main as is.

var errStub = fmt.Errorf("%w: access not built yet", ErrNotSupported)

func roleString(r Role) string         { return "?" }
func parseRole(s string) (Role, error) { return RoleNone, errStub }
func (n *Node) addUser(ctx context.Context, name, label string) (*User, KeyInfo, string, error) {
	return nil, KeyInfo{}, "", errStub
}
func (n *Node) getUser(ctx context.Context, name string) (*User, error) { return nil, errStub }
func (n *Node) listUsers(ctx context.Context) ([]User, error)           { return nil, errStub }
func (n *Node) removeUser(ctx context.Context, name string) error       { return errStub }
func (n *Node) issueKey(ctx context.Context, user, label string, readOnly bool) (KeyInfo, string, error) {
	return KeyInfo{}, "", errStub
}
func (n *Node) listKeys(ctx context.Context, user string) ([]KeyInfo, error) { return nil, errStub }
func (n *Node) revokeKey(ctx context.Context, user, id string) error         { return errStub }
func (n *Node) authenticate(ctx context.Context, user, secret string) (Principal, error) {
	return Principal{}, errStub
}
func (n *Node) roleOf(ctx context.Context, p Principal, dot DotName) (Role, error) {
	return RoleNone, errStub
}
func (n *Node) rolesOf(ctx context.Context, p Principal, dots []DotName) ([]Role, error) {
	return nil, errStub
}
func (n *Node) sharing(ctx context.Context, dot DotName) (*Sharing, error) { return nil, errStub }
func (n *Node) share(ctx context.Context, dot DotName, user string, role Role, by string) error {
	return errStub
}
func (n *Node) unshare(ctx context.Context, dot DotName, user string) error { return errStub }
func (n *Node) setVisibility(ctx context.Context, dot DotName, v Visibility) error {
	return errStub
}
func (n *Node) appendAudit(ctx context.Context, r AuditRecord) error { return errStub }
func (n *Node) listAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, string, error) {
	return nil, "", errStub
}
