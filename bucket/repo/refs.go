package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const (
	refsDir    = "refs/"
	versionLen = 20 // digits of a ref version in its object name
	refValue   = 0
	refDeleted = 1
	// refLockWait bounds how long a ref swap waits for the refs lock on a
	// store without conditional writes.
	refLockWait = 30 * time.Second
)

// RefState is a ref's current version.
type RefState struct {
	// Version is the version to pass to SetRef or DeleteRef as expected:
	// 0 when the ref was never written.
	Version uint64
	Exists  bool   // false: never written, or deleted
	Data    []byte // when Exists
}

// RefConflictError: a ref swap lost: ref Name is no longer at version
// Expected. It wraps dotmesh.ErrConflict.
type RefConflictError struct {
	Name     string
	Expected uint64
}

func (e *RefConflictError) Error() string {
	return fmt.Sprintf("%v: ref %s moved: another writer changed it after version %d was read", dotmesh.ErrConflict, e.Name, e.Expected)
}

func (e *RefConflictError) Unwrap() error { return dotmesh.ErrConflict }

func (r *Repo) refPrefix(name string) (string, error) {
	if err := validRecordName(name); err != nil {
		return "", err
	}
	return checkLen(refsDir+r.codec.token("ref", name)+"/", name)
}

// refObject names version v of the ref at prefix: "v" and 20 digits,
// never a token (hex), so that refs "a" and "a/b" never collide.
func refObject(prefix string, v uint64) string {
	return fmt.Sprintf("%sv%0*d", prefix, versionLen, v)
}

func parseVersion(s string) (uint64, bool) {
	s, ok := strings.CutPrefix(s, "v")
	if !ok || len(s) != versionLen {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil && v > 0
}

// versions lists the versions of the ref at prefix, ascending.
func (r *Repo) versions(ctx context.Context, prefix string) ([]uint64, error) {
	var vs []uint64
	err := r.store.List(ctx, prefix, func(oi bucket.ObjectInfo) error {
		if v, ok := parseVersion(strings.TrimPrefix(oi.Name, prefix)); ok {
			vs = append(vs, v)
		}
		return nil
	})
	slices.Sort(vs)
	return vs, err
}

// GetRef reads ref name's current version. A ref never written or
// deleted is no error: Exists is false.
func (r *Repo) GetRef(ctx context.Context, name string) (RefState, error) {
	prefix, err := r.refPrefix(name)
	if err != nil {
		return RefState{}, err
	}
	for attempt := 0; ; attempt++ {
		vs, err := r.versions(ctx, prefix)
		if err != nil || len(vs) == 0 {
			return RefState{}, err
		}
		v := vs[len(vs)-1]
		b, err := r.get(ctx, kindRef, refObject(prefix, v))
		if errors.Is(err, dotmesh.ErrNotFound) && attempt < 5 {
			continue // a writer cleaned it up after a newer version
		}
		if err != nil {
			return RefState{}, err
		}
		if len(b) == 0 || b[0] > refDeleted {
			return RefState{}, corrupt(refObject(prefix, v), errors.New("not a ref version"))
		}
		st := RefState{Version: v, Exists: b[0] == refValue}
		if st.Exists {
			st.Data = b[1:]
		}
		return st, nil
	}
}

// SetRef makes data ref name's next version if its current version is
// expect (RefState.Version; 0 for a ref never written), and returns the
// new version. Of two writers swapping from one version, exactly one
// wins; the other gets a RefConflictError.
func (r *Repo) SetRef(ctx context.Context, name string, expect uint64, data []byte) (uint64, error) {
	return r.swapRef(ctx, name, expect, append([]byte{refValue}, data...))
}

// DeleteRef deletes ref name if its current version is expect, as
// SetRef.
func (r *Repo) DeleteRef(ctx context.Context, name string, expect uint64) error {
	_, err := r.swapRef(ctx, name, expect, []byte{refDeleted})
	return err
}

func (r *Repo) swapRef(ctx context.Context, name string, expect uint64, body []byte) (uint64, error) {
	prefix, err := r.refPrefix(name)
	if err != nil {
		return 0, err
	}
	conflict := &RefConflictError{Name: name, Expected: expect}
	// expect must be the newest version; then creating the next one is
	// the swap. Versions are not deleted here (CompactRefs does, under
	// the exclusive lock), so a created version is always a new one.
	vs, err := r.versions(ctx, prefix)
	if err != nil {
		return 0, err
	}
	if latest(vs) != expect {
		return 0, conflict
	}
	obj := refObject(prefix, expect+1)
	err = r.put(ctx, kindRef, obj, body, true, true)
	if errors.Is(err, dotmesh.ErrNotSupported) {
		return r.swapRefLocked(ctx, prefix, obj, expect, body, conflict)
	}
	if errors.Is(err, dotmesh.ErrAlreadyExists) {
		// A retried create whose first answer was lost finds its own
		// version: the same content is the same swap.
		if b, gerr := r.get(ctx, kindRef, obj); gerr == nil && bytes.Equal(b, body) {
			return expect + 1, nil
		}
		return 0, conflict
	}
	if err != nil {
		return 0, err
	}
	return expect + 1, nil
}

func latest(vs []uint64) uint64 {
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1]
}

// swapRefLocked swaps under the exclusive refs lock, for stores that
// cannot create conditionally.
func (r *Repo) swapRefLocked(ctx context.Context, prefix, obj string, expect uint64, body []byte, conflict error) (uint64, error) {
	l, err := r.lockWait(ctx, scopeRefs, true, refLockWait)
	if err != nil {
		return 0, err
	}
	defer l.Unlock(context.WithoutCancel(ctx))
	vs, err := r.versions(ctx, prefix)
	if err != nil {
		return 0, err
	}
	if latest(vs) != expect {
		return 0, conflict
	}
	if err := r.put(ctx, kindRef, obj, body, true, false); err != nil {
		return 0, err
	}
	return expect + 1, nil
}

// CompactRefs removes all but the two newest versions of every ref (a
// reader that listed just before the newest was written still finds its
// version) and returns how many it removed. The caller holds the
// exclusive lock: a writer swapping meanwhile could otherwise create a
// version number anew.
func (r *Repo) CompactRefs(ctx context.Context) (int, error) {
	byToken := map[string][]string{}
	var order []string
	err := r.store.List(ctx, refsDir, func(oi bucket.ObjectInfo) error {
		tok, err := parseRefObject(oi.Name)
		if err != nil {
			r.log.Warn("repository: not a ref version's name", "object", oi.Name)
			return nil
		}
		if _, ok := byToken[tok]; !ok {
			order = append(order, tok)
		}
		byToken[tok] = append(byToken[tok], oi.Name)
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, tok := range order {
		objs := byToken[tok] // in name order: zero-padded versions ascend
		for _, obj := range objs[:max(len(objs)-2, 0)] {
			if err := r.store.Delete(ctx, obj); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// ListRefs returns the names of the refs under prefix ("" for all, else
// whole segments, as ListRecords) that exist (not deleted).
func (r *Repo) ListRefs(ctx context.Context, prefix string) ([]string, error) {
	list, self := refsDir, ""
	if prefix != "" {
		p, err := r.refPrefix(prefix)
		if err != nil {
			return nil, err
		}
		list, self = p, strings.TrimSuffix(strings.TrimPrefix(p, refsDir), "/")
	}
	var tokens []string
	err := r.store.List(ctx, list, func(oi bucket.ObjectInfo) error {
		tok, err := parseRefObject(oi.Name)
		if err != nil {
			return err
		}
		if tok != self && (len(tokens) == 0 || tokens[len(tokens)-1] != tok) {
			tokens = append(tokens, tok)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, tok := range tokens {
		name, err := r.codec.untoken("ref", tok)
		if err != nil {
			return nil, corrupt(refsDir+tok, err)
		}
		st, err := r.GetRef(ctx, name)
		if err != nil {
			return nil, err
		}
		if st.Exists {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// parseRefObject returns the token of a ref version's object name.
func parseRefObject(obj string) (string, error) {
	rest, ok := strings.CutPrefix(obj, refsDir)
	i := strings.LastIndexByte(rest, '/')
	if !ok || i <= 0 {
		return "", corrupt(obj, errors.New("not a ref version's name"))
	}
	if _, ok := parseVersion(rest[i+1:]); !ok {
		return "", corrupt(obj, errors.New("not a ref version's name"))
	}
	return rest[:i], nil
}
