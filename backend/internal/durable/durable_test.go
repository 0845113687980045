package durable

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSyncerClosesEverything(t *testing.T) {
	dir := t.TempDir()
	s := NewSyncer(4, 2)
	var files []*os.File
	for i := 0; i < 20; i++ {
		f, err := os.Create(filepath.Join(dir, string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("data")
		files = append(files, f)
		s.Add(f)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := f.Write([]byte("x")); err == nil {
			t.Fatalf("%s still open after Wait", f.Name())
		}
	}
	if err := SyncDirs([]string{dir, filepath.Dir(dir)}, 2); err != nil {
		t.Fatal(err)
	}
	if err := SyncDirs([]string{filepath.Join(dir, "missing")}, 2); err == nil {
		t.Fatal("syncing a missing directory succeeded")
	}
}
