package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLabelLength bounds a key's label, in characters.
const maxLabelLength = 100

// validateLabel checks a key label: at most maxLabelLength printable
// characters (a label is shown in lists, so no control characters).
func validateLabel(label string) error {
	if !utf8.ValidString(label) {
		return fmt.Errorf("%w: the key label is not valid UTF-8; use printable text", ErrInvalidArgument)
	}
	if n := utf8.RuneCountInString(label); n > maxLabelLength {
		return fmt.Errorf("%w: the key label is %d characters long; the limit is %d", ErrInvalidArgument, n, maxLabelLength)
	}
	if i := strings.IndexFunc(label, func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
		return fmt.Errorf("%w: the key label contains %q; use printable characters only", ErrInvalidArgument, []rune(label[i:])[0])
	}
	return nil
}

// addUser is Users.Add: the user and their first key in one transaction.
func (n *Node) addUser(ctx context.Context, name, label string) (*User, KeyInfo, string, error) {
	if err := ValidateNewName("user", name); err != nil {
		return nil, KeyInfo{}, "", err
	}
	if name == AdminUser {
		return nil, KeyInfo{}, "", fmt.Errorf("%w: user %s is the node's administrator, who always exists", ErrAlreadyExists, name)
	}
	if err := validateLabel(label); err != nil {
		return nil, KeyInfo{}, "", err
	}
	u := &User{Name: name, Created: n.now().UTC()}
	k, secret := n.newKeyRecord(name, label, false)
	_, err := n.store.Txn(ctx, []Condition{IfAbsent(userKey(name))},
		[]Op{PutOp(userKey(name), encode(u)), PutOp(keyKey(k.Hash), encode(k))})
	if errors.Is(err, ErrConflict) {
		return nil, KeyInfo{}, "", fmt.Errorf("%w: user %s exists already", ErrAlreadyExists, name)
	}
	if err != nil {
		return nil, KeyInfo{}, "", err
	}
	n.log.InfoContext(ctx, "added a user", "user", name, "key", k.ID)
	return u, k.info(), secret, nil
}

// getUser is Users.Get.
func (n *Node) getUser(ctx context.Context, name string) (*User, error) {
	u, _, err := n.reg.user(ctx, name)
	return u, err
}

// listUsers is Users.List.
func (n *Node) listUsers(ctx context.Context) ([]User, error) {
	us, _, err := listRecords[User](ctx, n.store, usersPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(us)+1)
	admin := false
	for _, u := range us {
		admin = admin || u.Name == AdminUser
		out = append(out, *u)
	}
	if !admin {
		out = append(out, User{Name: AdminUser, Admin: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// removeUser is Users.Remove: the user, their keys (issued and legacy)
// and every grant to them go in one transaction, guarded by the user
// record's revision, so a key issued meanwhile cannot outlive them (on
// etcd, grants beyond its transaction size are deleted just before).
func (n *Node) removeUser(ctx context.Context, name string) error {
	if err := ValidateName("user", name); err != nil {
		return err
	}
	if name == AdminUser {
		return fmt.Errorf("%w: user %s is the node's administrator and cannot be removed", ErrInvalidArgument, name)
	}
	_, rev, err := n.reg.user(ctx, name)
	if err != nil {
		return err
	}
	dots, err := n.store.List(ctx, namesPrefix+name+"/")
	if err != nil {
		return err
	}
	if len(dots) > 0 {
		return &NamespaceInUseError{User: name, Dots: len(dots)}
	}
	keys, err := n.reg.keysOf(ctx, name)
	if err != nil {
		return err
	}
	grants, err := n.store.List(ctx, grantsPrefix)
	if err != nil {
		return err
	}
	ops := []Op{DeleteOp(userKey(name)), DeleteOp(apiKeyKey(name))}
	for _, k := range keys {
		ops = append(ops, DeleteOp(keyKey(k.Hash)))
	}
	// Grants that do not fit in one transaction (etcd caps its size) go
	// first, so none outlives the user to pass to a later user of the name.
	var early []string
	for _, kv := range grants {
		if !strings.HasSuffix(kv.Key, "/"+name) {
			continue
		}
		if len(ops) < maxTxnOps {
			ops = append(ops, DeleteOp(kv.Key))
		} else {
			early = append(early, kv.Key)
		}
	}
	if err := n.deleteKeys(ctx, early); err != nil {
		return err
	}
	if _, err := n.store.Txn(ctx, []Condition{IfRevision(userKey(name), rev)}, ops); err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("%w: user %s changed while removing them; try again", ErrConflict, name)
		}
		return err
	}
	n.log.InfoContext(ctx, "removed a user", "user", name, "keys", len(keys))
	return nil
}
