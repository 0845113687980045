package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const recordsDir = "records/"

// MaxRecordName bounds a record's or ref's name, so that its token and
// the store's prefix fit an object name.
const MaxRecordName = 160

// validRecordName checks a record or ref name: slash-separated parts of
// [A-Za-z0-9._-], none empty or starting with a dot.
func validRecordName(name string) error {
	if name == "" || len(name) > MaxRecordName {
		return fmt.Errorf("%w: record name %.40q must be 1 to %d bytes", dotmesh.ErrInvalidName, name, MaxRecordName)
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == "" || part[0] == '.' {
			return fmt.Errorf("%w: record name %q has an empty part or one starting with a dot", dotmesh.ErrInvalidName, name)
		}
		for i := 0; i < len(part); i++ {
			if c := part[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("%w: record name %q has %q; only letters, digits, '.', '_', '-' and '/' are allowed", dotmesh.ErrInvalidName, name, c)
			}
		}
	}
	return nil
}

// validKind checks a record kind: [a-z][a-z0-9-]{0,31}.
func validKind(kind string) error {
	ok := kind != "" && len(kind) <= 32 && kind[0] >= 'a' && kind[0] <= 'z'
	for i := 0; ok && i < len(kind); i++ {
		c := kind[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w: record kind %.40q must be a lowercase letter, then up to 31 of [a-z0-9-]", dotmesh.ErrInvalidName, kind)
	}
	return nil
}

func (r *Repo) recordName(kind, name string) (string, error) {
	if err := validKind(kind); err != nil {
		return "", err
	}
	if err := validRecordName(name); err != nil {
		return "", err
	}
	return checkLen(recordsDir+kind+"/"+r.codec.token("record/"+kind, name)+recordSuffix, name)
}

// recordSuffix ends a record's object name: the tokens of the segments
// before it are hex, so a record "a" (a file in a directory store) and
// "a/b" (in a folder of a's token) never collide.
const recordSuffix = ".r"

// checkLen refuses a name whose object name would be too long for a
// store.
func checkLen(obj, name string) (string, error) {
	if len(obj) > bucket.MaxNameLen-32 { // room for a store's prefix
		return "", fmt.Errorf("%w: name %.40q... is too long for an object name (it takes %d of %d bytes); use fewer or shorter parts", dotmesh.ErrInvalidName, name, len(obj), bucket.MaxNameLen-32)
	}
	return obj, nil
}

// PutRecord stores data as the record of kind named name, replacing one
// of that name. Records are for what is written once under a name of its
// own (commit records, manifests); what several writers move is a ref.
func (r *Repo) PutRecord(ctx context.Context, kind, name string, data []byte) error {
	obj, err := r.recordName(kind, name)
	if err != nil {
		return err
	}
	return r.put(ctx, kindRecord, obj, data, true, false)
}

// GetRecord reads the record of kind named name; a missing one wraps
// dotmesh.ErrNotFound, a damaged one is a CorruptError.
func (r *Repo) GetRecord(ctx context.Context, kind, name string) ([]byte, error) {
	obj, err := r.recordName(kind, name)
	if err != nil {
		return nil, err
	}
	b, err := r.get(ctx, kindRecord, obj)
	if errors.Is(err, dotmesh.ErrNotFound) {
		return nil, errMissing(kind+" record", name)
	}
	return b, err
}

// ListRecords returns the names of the records of kind under prefix (""
// for all, else whole segments: "ns" lists "ns/dot/x", not "nsx"), in
// the order of their objects (by name without encryption). An object
// whose name does not decode is a CorruptError.
func (r *Repo) ListRecords(ctx context.Context, kind, prefix string) ([]string, error) {
	if err := validKind(kind); err != nil {
		return nil, err
	}
	dir := recordsDir + kind + "/"
	list := dir
	if prefix != "" {
		if err := validRecordName(prefix); err != nil {
			return nil, err
		}
		list += r.codec.token("record/"+kind, prefix) + "/"
	}
	var names []string
	err := r.store.List(ctx, list, func(oi bucket.ObjectInfo) error {
		name, err := r.parseRecordName(kind, oi.Name)
		if err != nil {
			return err
		}
		names = append(names, name)
		return nil
	})
	return names, err
}

// parseRecordName returns the name of record object obj of kind.
func (r *Repo) parseRecordName(kind, obj string) (string, error) {
	tok, ok := strings.CutSuffix(strings.TrimPrefix(obj, recordsDir+kind+"/"), recordSuffix)
	if !ok {
		return "", corrupt(obj, errors.New("not a record's name"))
	}
	name, err := r.codec.untoken("record/"+kind, tok)
	if err != nil {
		return "", corrupt(obj, err)
	}
	return name, nil
}

// DeleteRecord removes the record of kind named name (no error when
// missing).
func (r *Repo) DeleteRecord(ctx context.Context, kind, name string) error {
	obj, err := r.recordName(kind, name)
	if err != nil {
		return err
	}
	return r.store.Delete(ctx, obj)
}
