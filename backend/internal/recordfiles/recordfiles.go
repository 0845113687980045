// Package recordfiles keeps the registry records of a dotmesh.RecordKeeper
// as files beside a backend's data, outside every working tree:
// DIR/<dot id>/<record key>. Each record is written to a temporary file,
// synced and renamed into place, so it is whole or absent after a crash.
package recordfiles

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

const tmpPrefix = ".tmp-"

// Dir keeps records under one directory.
type Dir struct{ path string }

// New keeps records under path, made (mode 0700) on the first write.
func New(path string) *Dir { return &Dir{path: path} }

// KeepRecords implements dotmesh.RecordKeeper. The dot id and the record
// keys and sizes were checked by the guard (backend/internal/guard).
func (d *Dir) KeepRecords(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	dir := filepath.Join(d.path, string(dot))
	for k, v := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if v == nil {
			if err := os.Remove(filepath.Join(dir, k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := writeAtomic(dir, k, v); err != nil {
			return err
		}
	}
	// A dot whose records are all gone leaves no directory behind.
	if err := os.Remove(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return syncDir(dir)
}

func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Records implements dotmesh.RecordKeeper. Temporary files of writes that
// a crash cut short are left out (and removed).
func (d *Dir) Records(ctx context.Context) (map[dotmesh.DotID]map[string][]byte, error) {
	out := make(map[dotmesh.DotID]map[string][]byte)
	dots, err := os.ReadDir(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, de := range dots {
		if dotmesh.ValidateID("dot", de.Name(), false) != nil || !de.IsDir() {
			return nil, fmt.Errorf("%w: %s is not a dot's records", dotmesh.ErrCorrupt, filepath.Join(d.path, de.Name()))
		}
		dir := filepath.Join(d.path, de.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		recs := make(map[string][]byte, len(files))
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			p := filepath.Join(dir, f.Name())
			if strings.HasPrefix(f.Name(), tmpPrefix) {
				os.Remove(p)
				continue
			}
			if dotmesh.ValidateRecordKey(f.Name()) != nil || !f.Type().IsRegular() {
				return nil, fmt.Errorf("%w: %s is not a record", dotmesh.ErrCorrupt, p)
			}
			if fi, err := f.Info(); err != nil {
				return nil, err
			} else if fi.Size() > dotmesh.MaxRecordSize {
				return nil, fmt.Errorf("%w: record %s has %d bytes, more than %d", dotmesh.ErrCorrupt, p, fi.Size(), dotmesh.MaxRecordSize)
			}
			v, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			recs[f.Name()] = v
		}
		out[dotmesh.DotID(de.Name())] = recs
	}
	return out, nil
}
