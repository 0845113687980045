package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestResolveSettings(t *testing.T) {
	dir := t.TempDir()
	s, err := resolveSettings(Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := backendSettings{Default: "dump", Enabled: []string{"dump"}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("defaults: %+v, want %+v", s, want)
	}

	// dump always runs; duplicates and aliases fold; order is dump,
	// default, then the others as given.
	s, err = resolveSettings(Config{Backend: "zfs", EnableBackends: []string{"btrfs", "files", "zfs", " "}, ZFSPool: "tank", PoolSize: 1 << 30}, dir)
	if err != nil {
		t.Fatal(err)
	}
	want = backendSettings{Default: "zfs", Enabled: []string{"dump", "zfs", "btrfs"}, ZFSPool: "tank", PoolSize: 1 << 30}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("given: %+v, want %+v", s, want)
	}

	// What was saved is the default of the next start, field by field.
	if err := s.save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := resolveSettings(Config{}, dir)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("remembered: %+v %v, want %+v", got, err, want)
	}
	got, err = resolveSettings(Config{Backend: "files", EnableBackends: []string{}}, dir)
	want = backendSettings{Default: "dump", Enabled: []string{"dump"}, ZFSPool: "tank", PoolSize: 1 << 30}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("overridden: %+v %v, want %+v", got, err, want)
	}

	for _, c := range []Config{{Backend: "tape"}, {EnableBackends: []string{"zfs", "nfs"}}} {
		if _, err := resolveSettings(c, dir); !errors.Is(err, dotmesh.ErrInvalidArgument) || !strings.Contains(err.Error(), "btrfs, dump, files, zfs") {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if _, err := resolveSettings(Config{PoolSize: -1}, dir); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Errorf("negative size: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, settingsFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveSettings(Config{}, dir); !errors.Is(err, dotmesh.ErrCorrupt) || !strings.Contains(err.Error(), settingsFile) {
		t.Errorf("corrupt settings: %v", err)
	}
}

func TestBackendErrorNamesTheBackend(t *testing.T) {
	err := backendError("zfs", errors.New("zfs-fuse is not running"))
	for _, want := range []string{"the zfs backend cannot start", "zfs-fuse is not running", "--backend files"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if (os.Geteuid() != 0) != strings.Contains(err.Error(), "needs root") {
		t.Errorf("root hint wrong for uid %d: %q", os.Geteuid(), err)
	}
}

// A backend that cannot start fails Run with a line naming it and the
// missing part, and the data directory does not remember the choice.
func TestRunBackendMissing(t *testing.T) {
	t.Setenv("PATH", "/nonexistent") // hides btrfs-progs
	dir := t.TempDir()
	err := Run(t.Context(), Config{DataDir: dir, Listen: "127.0.0.1:0", Backend: "btrfs"})
	if err == nil || !strings.HasPrefix(err.Error(), "the btrfs backend cannot start") || !strings.Contains(err.Error(), "btrfs-progs") {
		t.Fatalf("Run with btrfs and no btrfs-progs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, settingsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed start saved its settings: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, PIDFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after a failed start: %v", err)
	}
}
