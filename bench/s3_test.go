package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
)

// A smoke test of the s3 section's helpers; the section itself runs
// servers and is run by `make bench`, not by the tests.

// changeMixed changes about 1% of the tree: in place, appended and new
// files, each part present.
func TestChangeMixed(t *testing.T) {
	root := t.TempDir()
	const size = 32 << 20
	if _, err := generate(root, size); err != nil {
		t.Fatal(err)
	}
	before, err := statTree(root)
	if err != nil {
		t.Fatal(err)
	}
	old := readTree(t, root)
	if err := changeMixed(root, size, 3); err != nil {
		t.Fatal(err)
	}
	after, err := statTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if after.files != before.files+8 {
		t.Errorf("%d files after the change, %d before; want 8 new ones", after.files, before.files)
	}
	grown := after.bytes - before.bytes
	if grown < size/200*9/10 || grown > size/200*11/10 {
		t.Errorf("the tree grew by %d bytes; want about %d (appended and new files: half of 1%%)", grown, size/200)
	}
	var changed, appended int64
	for p, was := range old {
		now, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n := min(len(was), len(now))
		for i := range n {
			if was[i] != now[i] {
				changed++
			}
		}
		if len(now) > len(was) {
			appended++
		}
	}
	if changed < size/200/2 {
		t.Errorf("%d bytes changed in place; want about %d", changed, size/200)
	}
	if appended == 0 {
		t.Error("no file was appended to")
	}
	if err := checkTree("the changed tree", root, before); err == nil || !strings.Contains(err.Error(), "the tree has") {
		t.Errorf("checkTree of a changed tree: %v", err)
	}
	if err := checkTree("the changed tree", root, after); err != nil {
		t.Error(err)
	}
}

func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		m[p], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVmHWM(t *testing.T) {
	n, err := vmHWM(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if n < 1<<20 || n > 64<<30 {
		t.Fatalf("this process's peak memory read as %d bytes", n)
	}
	if _, err := vmHWM(-1); err == nil {
		t.Fatal("vmHWM of no process gave no error")
	}
}

// cpuTime agrees with getrusage about this process (all its threads).
func TestCPUTime(t *testing.T) {
	rusage := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ru0 := rusage()
	for rusage()-ru0 < 300*time.Millisecond {
	}
	after, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	got, want := after-before, rusage()-ru0
	if got < want-50*time.Millisecond || got > want+50*time.Millisecond {
		t.Fatalf("cpuTime counted %v where getrusage counted %v", got, want)
	}
}

func TestBucketSize(t *testing.T) {
	st, err := bucket.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for name, body := range map[string]string{"a": "12345", "d/b": "123", "d/e/c": ""} {
		if err := st.Put(ctx, name, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	if o, err := bucketSize(ctx, st); err != nil || o != (objects{bytes: 8, n: 3}) {
		t.Fatalf("bucketSize = %+v, %v; want 8 bytes in 3 objects", o, err)
	}
}
