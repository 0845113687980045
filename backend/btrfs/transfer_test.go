//go:build linux && cgo

package btrfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// receiverOnOwnImage opens a backend on a filesystem of its own, as a
// peer node would have.
func receiverOnOwnImage(t *testing.T) *Guarded {
	t.Helper()
	dir := newPlainDir(t)
	b, err := Open(context.Background(), Options{DataDir: dir, PoolSize: 1 << 30})
	must(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func noStaging(t *testing.T, b *Guarded, br dotmesh.BranchRef) {
	t.Helper()
	ents, _ := os.ReadDir(b.b.commitsDir(br))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("staging left behind: %s", e.Name())
		}
	}
}

type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestSendReceive(t *testing.T) {
	ctx := context.Background()
	a := openShared(t)
	dot := dotmesh.NewDotID()
	master := newBranch(dot, "master")
	must(t, a.CreateBranch(ctx, master, nil))
	writeFile(t, subdot(t, a, master, "db")+"/table", strings.Repeat("row\n", 100000))
	writeFile(t, subdot(t, a, master, "files")+"/f", "v1")
	c1 := commit(t, a, master)
	writeFile(t, subdot(t, a, master, "files")+"/f", "v2")
	writeFile(t, subdot(t, a, master, "db")+"/table2", "more")
	c2 := commit(t, a, master)
	full := sendBytes(t, a, c1, nil)
	inc := sendBytes(t, a, c2, &c1)
	if len(inc) >= len(full) {
		t.Fatalf("incremental stream (%d bytes) not smaller than full (%d)", len(inc), len(full))
	}

	b := receiverOnOwnImage(t)
	recv := func(c dotmesh.CommitRef, base *dotmesh.CommitRef, data []byte) error {
		return b.Receive(ctx, c, base, bytes.NewReader(data))
	}
	t.Run("truncated or corrupt streams change nothing", func(t *testing.T) {
		cuts := []int{0, 5, streamFormat.HeaderLen(), streamFormat.HeaderLen() + 3, len(full) / 2, len(full) - 45, len(full) - 20, len(full) - 1}
		for _, n := range cuts {
			if err := recv(c1, nil, full[:n]); !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("stream cut at %d of %d: %v, want ErrCorrupt", n, len(full), err)
			}
		}
		for _, pos := range []int{streamFormat.HeaderLen() + 10, len(full) / 2, len(full) - 10} {
			bad := slices.Clone(full)
			bad[pos] ^= 0x40
			if err := recv(c1, nil, bad); !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("byte %d flipped: %v, want ErrCorrupt", pos, err)
			}
		}
		ids, err := b.Commits(ctx, master)
		must(t, err)
		if len(ids) != 0 {
			t.Fatalf("commits after failed receives: %v", ids)
		}
		noStaging(t, b, master)
	})
	t.Run("a broken connection changes nothing", func(t *testing.T) {
		boom := errors.New("connection reset")
		err := b.Receive(ctx, c1, nil, &failingReader{r: bytes.NewReader(full), n: len(full) / 2, err: boom})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
		noStaging(t, b, master)
	})
	t.Run("wrong ids are refused", func(t *testing.T) {
		if err := recv(commitRef(master), nil, full); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Fatalf("other target id: %v", err)
		}
		if err := recv(c2, nil, inc); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Fatalf("incremental without base: %v", err)
		}
		if err := recv(c2, &c1, inc); !errors.Is(err, dotmesh.ErrNotFound) {
			t.Fatalf("incremental before its base arrived: %v", err)
		}
	})
	t.Run("full then incremental", func(t *testing.T) {
		must(t, recv(c1, nil, full))
		if err := recv(c1, nil, full); !errors.Is(err, dotmesh.ErrAlreadyExists) {
			t.Fatalf("receiving twice: %v", err)
		}
		if err := recv(c2, &c1, inc[:len(inc)-30]); !errors.Is(err, dotmesh.ErrCorrupt) {
			t.Fatalf("truncated incremental: %v", err)
		}
		noStaging(t, b, master)
		must(t, recv(c2, &c1, inc))
		ids, err := b.Commits(ctx, master)
		must(t, err)
		if !slices.Equal(ids, sorted(c1.ID, c2.ID)) {
			t.Fatalf("received commits %v", ids)
		}
		brs, err := b.Branches(ctx)
		must(t, err)
		if !slices.Equal(brs, []dotmesh.BranchRef{master}) {
			t.Fatalf("branches %v", brs)
		}
		must(t, b.CreateBranch(ctx, master, &c2))
		if got := readFile(t, b.b.livePath(master)+"/files/f"); got != "v2" {
			t.Fatalf("received f = %q", got)
		}
		if got := readFile(t, b.b.livePath(master)+"/db/table"); got != strings.Repeat("row\n", 100000) {
			t.Fatal("received table differs")
		}
		if u := usage(t, b, master, &c2); u.Dirty {
			t.Fatalf("branch made from a received commit is dirty: %+v", u)
		}
	})
	t.Run("and back", func(t *testing.T) {
		writeFile(t, b.b.livePath(master)+"/files/f", "v3 from the other side")
		c3 := commit(t, b, master)
		back := sendBytes(t, b, c3, &c2)
		must(t, a.Receive(ctx, c3, &c2, bytes.NewReader(back)))
		must(t, a.Rollback(ctx, master, c3))
		if got := readFile(t, a.b.livePath(master)+"/files/f"); got != "v3 from the other side" {
			t.Fatalf("f = %q", got)
		}
	})
}

// TestInterruptedReceiveRecovered: btrfs receive killed halfway leaves a
// half-received subvolume; after a restart it is gone and a retry works.
func TestInterruptedReceiveRecovered(t *testing.T) {
	ctx := context.Background()
	a := openShared(t)
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, a.CreateBranch(ctx, br, nil))
	writeFile(t, a.b.livePath(br)+"/data", strings.Repeat("0123456789", 50000))
	c1 := commit(t, a, br)
	var raw bytes.Buffer
	must(t, btrfsSend(ctx, a.b.snapPath(c1), "", &raw))

	dir := newPlainDir(t)
	b, err := Open(ctx, Options{DataDir: dir, PoolSize: 512 << 20})
	must(t, err)
	staging := b.b.commitsDir(br) + "/.recv-crashed"
	must(t, os.MkdirAll(staging, 0o755))
	rc, err := startReceive(ctx, staging)
	must(t, err)
	rc.stdin.Write(raw.Bytes()[:raw.Len()/2])
	rc.abort() // as if the node died here
	ents, _ := os.ReadDir(staging)
	if len(ents) != 1 {
		t.Fatalf("expected a half-received subvolume, got %v", ents)
	}
	info, err := getSubvolInfo(staging + "/" + ents[0].Name())
	must(t, err)
	if info.Readonly || info.ReceivedUUID != "" {
		t.Fatalf("half-received subvolume looks complete: %+v", info)
	}
	must(t, b.Close())

	b = openAt(t, dir)
	if ok, _ := exists(staging); ok {
		t.Fatal("staging of the interrupted receive survived Open")
	}
	must(t, b.Receive(ctx, c1, nil, bytes.NewReader(sendBytes(t, a, c1, nil))))
	ids, err := b.Commits(ctx, br)
	must(t, err)
	if !slices.Equal(ids, []dotmesh.CommitID{c1.ID}) {
		t.Fatalf("commits %v", ids)
	}
}
