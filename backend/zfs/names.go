package zfs

import (
	"fmt"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// maxDatasetName is ZFS's limit on a full dataset or snapshot name.
const maxDatasetName = 255

// dataset is a validated ZFS filesystem name ("pool/a/b"). Commands take
// this type, never a raw string, so nothing that reaches the command line
// can be an option ("-R") or a snapshot where a filesystem is meant.
type dataset struct{ name string }

// snapshot is a validated "filesystem@name".
type snapshot struct {
	fs   dataset
	name string
}

func (d dataset) String() string  { return d.name }
func (s snapshot) String() string { return s.fs.name + "@" + s.name }

// Leaf returns the last component.
func (d dataset) Leaf() string { return d.name[strings.LastIndexByte(d.name, '/')+1:] }

// Pool returns the first component.
func (d dataset) Pool() string { p, _, _ := strings.Cut(d.name, "/"); return p }

// validComponent checks one dataset or snapshot name component against the
// characters both OpenZFS and zfs-fuse accept.
func validComponent(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s name component", dotmesh.ErrInvalidName, what)
	}
	if s[0] == '-' || s == "." || s == ".." {
		return fmt.Errorf("%w: %s name component %q is not allowed", dotmesh.ErrInvalidName, what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':' {
			continue
		}
		return fmt.Errorf("%w: %s name %q contains %q; ZFS names use letters, digits and _ - . :", dotmesh.ErrInvalidName, what, s, rune(c))
	}
	return nil
}

// validPool checks a pool name: it must start with a letter and must not be
// one of the words zpool reserves for vdev types.
func validPool(s string) error {
	if err := validComponent("pool", s); err != nil {
		return err
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return fmt.Errorf("%w: pool name %q must start with a letter", dotmesh.ErrInvalidName, s)
	}
	for _, r := range []string{"mirror", "raidz", "spare", "log", "cache"} {
		if strings.HasPrefix(s, r) {
			return fmt.Errorf("%w: pool name %q starts with the reserved word %q", dotmesh.ErrInvalidName, s, r)
		}
	}
	if len(s) >= 2 && s[0] == 'c' && s[1] >= '0' && s[1] <= '9' {
		return fmt.Errorf("%w: pool name %q looks like a disk name (c0...), which zpool rejects", dotmesh.ErrInvalidName, s)
	}
	return nil
}

// parseDataset validates a filesystem name.
func parseDataset(s string) (dataset, error) {
	if len(s) > maxDatasetName {
		return dataset{}, fmt.Errorf("%w: dataset name %q is longer than %d characters", dotmesh.ErrInvalidName, s, maxDatasetName)
	}
	parts := strings.Split(s, "/")
	if err := validPool(parts[0]); err != nil {
		return dataset{}, err
	}
	for _, p := range parts[1:] {
		if err := validComponent("dataset", p); err != nil {
			return dataset{}, err
		}
	}
	return dataset{s}, nil
}

// parseSnapshot validates "filesystem@name".
func parseSnapshot(s string) (snapshot, error) {
	fs, name, ok := strings.Cut(s, "@")
	if !ok {
		return snapshot{}, fmt.Errorf("%w: %q is not a snapshot name", dotmesh.ErrInvalidName, s)
	}
	d, err := parseDataset(fs)
	if err != nil {
		return snapshot{}, err
	}
	return d.Snapshot(name)
}

// Child returns the dataset leaf below d.
func (d dataset) Child(leaf string) (dataset, error) {
	if err := validComponent("dataset", leaf); err != nil {
		return dataset{}, err
	}
	if len(d.name)+1+len(leaf) > maxDatasetName {
		return dataset{}, fmt.Errorf("%w: dataset name %s/%s is too long", dotmesh.ErrInvalidName, d.name, leaf)
	}
	return dataset{d.name + "/" + leaf}, nil
}

// Snapshot returns d@name.
func (d dataset) Snapshot(name string) (snapshot, error) {
	if err := validComponent("snapshot", name); err != nil {
		return snapshot{}, err
	}
	if len(d.name)+1+len(name) > maxDatasetName {
		return snapshot{}, fmt.Errorf("%w: snapshot name %s@%s is too long", dotmesh.ErrInvalidName, d.name, name)
	}
	return snapshot{d, name}, nil
}

// prop is a property assignment for -o or zfs set. Only keys this package
// uses are accepted, and values cannot smuggle in another argument.
type prop struct{ key, value string }

// userBranchProp tags a snapshot with the branch whose commit it is, so the
// commit keeps its identity when zfs promote moves the snapshot to another
// filesystem.
const userBranchProp = "io.dotmesh:branch"

var settable = map[string]bool{
	"mountpoint": true, "canmount": true, "atime": true, userBranchProp: true, stateProp: true, pristineProp: true,
	"refquota": true,
}

func newProp(key, value string) (prop, error) {
	if !settable[key] {
		return prop{}, fmt.Errorf("%w: property %q is not one this backend sets", dotmesh.ErrInvalidArgument, key)
	}
	if value == "" || strings.ContainsAny(value, "\x00\n\t") {
		return prop{}, fmt.Errorf("%w: property %s value %q is not allowed", dotmesh.ErrInvalidArgument, key, value)
	}
	return prop{key, value}, nil
}

func mustProp(key, value string) prop {
	p, err := newProp(key, value)
	if err != nil {
		panic(err)
	}
	return p
}

func (p prop) String() string { return p.key + "=" + p.value }
