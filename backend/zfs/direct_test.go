package zfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bt "github.com/dotmesh-io/dotmesh/backend/backendtest"
	"github.com/dotmesh-io/dotmesh/backend/zfs"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestTransferDirect: SendDirect's bare zfs stream, received with
// ReceiveDirect from a file as from a socket. zfs's own checks refuse a
// stream cut short or altered anywhere, storing nothing; a complete stream,
// or a base that is not the live filesystem's latest snapshot, is not
// taken (ErrNotSupported) before accept is called.
func TestTransferDirect(t *testing.T) {
	src, dst := newH(t), newH(t)
	master := dotmesh.BranchRef{Dot: dotmesh.NewDotID(), Branch: "master"}
	src.must(src.b.CreateBranch(src.ctx, master, nil), "CreateBranch")
	v1 := bt.Tree{"db": bt.Dir(0o755), "db/f": bt.RandomFile(0o644, 400<<10, 1)}
	src.write(master, v1)
	c1 := src.commit(master)
	v2 := v1.Clone().Merge(bt.Tree{"db/f": bt.RandomFile(0o644, 400<<10, 2), "db/g": bt.File(0o644, "two")})
	src.write(master, v2)
	c2 := src.commit(master)

	dir := t.TempDir()
	raw := filepath.Join(dir, "raw")
	f, err := os.Create(raw)
	src.must(err, "create")
	streams := zfs.SocketStreams()
	src.must(src.b.SendDirect(src.ctx, c2, &c1, f), "SendDirect")
	if _, err := os.Stat("/dev/zfs"); err != nil && zfs.SocketStreams() != streams+1 {
		t.Errorf("with zfs-fuse SendDirect did not send through its command socket")
	}
	f.Close()
	stream, err := os.ReadFile(raw)
	src.must(err, "read")
	if len(stream) < 400<<10 {
		t.Fatalf("SendDirect wrote %d bytes; want the changed file's at least", len(stream))
	}
	if err := src.b.SendDirect(src.ctx, c1, nil, f); !errors.Is(err, dotmesh.ErrNotSupported) {
		t.Errorf("SendDirect of a complete stream: %v, want ErrNotSupported", err)
	}

	accepted := false
	from := func(data []byte) func() (*os.File, error) {
		return func() (*os.File, error) {
			accepted = true
			p := filepath.Join(dir, "in")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				return nil, err
			}
			return os.Open(p)
		}
	}
	// Before the receiver holds the base: not taken, nothing read.
	if err := dst.b.ReceiveDirect(dst.ctx, c2, &c1, from(stream)); !errors.Is(err, dotmesh.ErrNotSupported) && !errors.Is(err, dotmesh.ErrNotFound) {
		t.Errorf("ReceiveDirect without the base: %v, want ErrNotSupported", err)
	}
	if accepted {
		t.Error("ReceiveDirect without the base accepted the stream")
	}
	dst.must(dst.receive(c1, nil, src.send(c1, nil)), "receive C1")

	flip := func(i int) []byte { b := slices.Clone(stream); b[i] ^= 0x01; return b }
	for _, bad := range []badStream{
		{"empty", nil},
		{"garbage", bt.RandomBytes(len(stream), 9)},
		{"cut in half", stream[:len(stream)/2]},
		{"END record missing", stream[:len(stream)-312]},
		{"last byte missing", stream[:len(stream)-1]},
		{"byte flipped in the middle", flip(len(stream) / 2)},
		{"byte flipped near the end", flip(len(stream) - 400)},
		{"checksum flipped", flip(len(stream) - 300)},
	} {
		accepted = false
		if err := dst.b.ReceiveDirect(dst.ctx, c2, &c1, from(bad.data)); err == nil {
			t.Errorf("%s: received", bad.name)
		}
		if !accepted {
			t.Errorf("%s: not accepted; the test proves nothing", bad.name)
		}
		dst.commits(master, c1)
	}
	dst.assertNoStaging("after damaged direct streams")

	streams = zfs.SocketStreams()
	dst.must(dst.b.ReceiveDirect(dst.ctx, c2, &c1, from(stream)), "ReceiveDirect C2")
	if _, err := os.Stat("/dev/zfs"); err != nil && zfs.SocketStreams() != streams+1 {
		t.Errorf("with zfs-fuse ReceiveDirect did not receive through its command socket")
	}
	dst.commits(master, c1, c2)
	dst.assertTree(master, v2)
	// Stored already: not taken.
	accepted = false
	if err := dst.b.ReceiveDirect(dst.ctx, c2, &c1, from(stream)); !errors.Is(err, dotmesh.ErrNotSupported) || accepted {
		t.Errorf("ReceiveDirect of a stored commit: %v (accepted %v), want ErrNotSupported", err, accepted)
	}
}
