package worktree

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var br = dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}

func TestSubdotDir(t *testing.T) {
	root := t.TempDir()
	if p, err := SubdotDir(root, br, dotmesh.RootSubdot); err != nil || p != root {
		t.Fatalf("root subdot: %q, %v", p, err)
	}
	old := syscall.Umask(0o077)
	p, err := SubdotDir(root, br, dotmesh.DefaultSubdot)
	syscall.Umask(old)
	if err != nil || p != filepath.Join(root, dotmesh.DefaultSubdot) {
		t.Fatalf("default subdot: %q, %v", p, err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("made %v, %v; want a 0755 directory", st.Mode(), err)
	}
	if again, err := SubdotDir(root, br, dotmesh.DefaultSubdot); err != nil || again != p {
		t.Fatalf("existing subdot: %q, %v", again, err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"file", "link"} {
		if _, err := SubdotDir(root, br, name); !errors.Is(err, dotmesh.ErrConflict) {
			t.Errorf("%s in the way: %v, want ErrConflict", name, err)
		}
	}
	if _, err := SubdotDir(filepath.Join(root, "missing"), br, "db"); err == nil {
		t.Error("made a subdot in a missing tree")
	}
}

func TestSubdots(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"db", dotmesh.DefaultSubdot, dotmesh.RootSubdot, "_reserved", "bad name"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Subdots(root, br)
	if err != nil || !slices.Equal(got, []string{dotmesh.DefaultSubdot, "db"}) {
		t.Fatalf("Subdots = %q, %v", got, err)
	}
	empty := t.TempDir()
	if got, err := Subdots(empty, br); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty tree: %#v, %v", got, err)
	}
	if _, err := Subdots(filepath.Join(root, "missing"), br); err == nil {
		t.Fatal("listed a missing tree")
	}
}
