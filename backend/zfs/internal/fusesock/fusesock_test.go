package fusesock

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/zfs/zfstest"
)

// TestPackStrings: the XDR nvlist of one string pair, written out by
// hand from nvpair.c's format.
func TestPackStrings(t *testing.T) {
	want := "01010000" + "00000000" + "00000001" + // header, version, NV_UNIQUE_NAME
		"00000020" + "00000020" + // encoded pair 32 bytes; nvpair_t 16 + "a:b\0" -> 24, "c\0" -> 8
		"00000003" + "613a6200" + // name
		"00000009" + "00000001" + // DATA_TYPE_STRING, one
		"00000001" + "63000000" + // value
		"00000000" + "00000000" // end
	if got := hex.EncodeToString(PackStrings(map[string]string{"a:b": "c"})); got != want {
		t.Fatalf("PackStrings = %s\nwant          %s", got, want)
	}
	two := PackStrings(map[string]string{"z:z": "1", "a:a": "22"})
	if i, j := bytes.Index(two, []byte("a:a")), bytes.Index(two, []byte("z:z")); i < 0 || j < i {
		t.Fatalf("pairs not in name order: %x", two)
	}
}

// TestSnapshotThroughDaemon takes snapshots through a running zfs-fuse
// and reads them back with the zfs command.
func TestSnapshotThroughDaemon(t *testing.T) {
	pool, _ := zfstest.NewPool(t, 256<<20)
	fs := pool + "/fusesock"
	zfstest.ZFS(t, "create", fs)
	c := New(DefaultPath)
	ctx := context.Background()
	if err := c.Snapshot(ctx, fs, "probe", nil); err != nil {
		t.Fatalf("this test needs zfs-fuse's command socket at %s (zfs-fuse, not OpenZFS): %v", DefaultPath, err)
	}
	props := map[string]string{"io.dotmesh:branch": "master", "io.dotmesh:note": strings.Repeat("x", 300)}
	if err := c.Snapshot(ctx, fs, "one", props); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	for k, v := range props {
		if got := strings.TrimSpace(zfstest.ZFS(t, "get", "-H", "-o", "value", k, fs+"@one")); got != v {
			t.Fatalf("%s of the snapshot = %q, want %q", k, got, v)
		}
	}
	if err := c.Snapshot(ctx, fs, "bare", nil); err != nil {
		t.Fatalf("Snapshot without properties: %v", err)
	}
	zfstest.ZFS(t, "list", "-H", "-o", "name", fs+"@bare")
	if err := c.Snapshot(ctx, fs, "one", nil); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("Snapshot of an existing name: %v, want EEXIST", err)
	}
	if err := c.Snapshot(ctx, pool+"/nothing", "one", nil); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Snapshot of a missing file system: %v, want ENOENT", err)
	}
	if err := c.Snapshot(ctx, fs, "bad", map[string]string{"mountpoint": "/x"}); err == nil {
		t.Fatal("Snapshot with a native property: no error")
	}
	if out, err := exec.Command("zfs", "list", "-H", "-o", "name", fs+"@bad").CombinedOutput(); err == nil {
		t.Fatalf("a refused snapshot was made: %s", out)
	}
	var de *DialError
	if err := New(t.TempDir()+"/none").Snapshot(ctx, fs, "x", nil); !errors.As(err, &de) {
		t.Fatalf("Snapshot through a missing socket: %v, want a DialError", err)
	}
}

// rw is a daemon's side of a connection: it answers from r and takes
// what the client writes.
type rw struct {
	io.Reader
	w bytes.Buffer
}

func (x *rw) Write(p []byte) (int, error) { return x.w.Write(p) }

func msg(typ uint32, a, b uint64) []byte {
	m := make([]byte, msgSize)
	binary.LittleEndian.PutUint32(m, typ)
	binary.LittleEndian.PutUint64(m[8:], a)
	binary.LittleEndian.PutUint64(m[16:], b)
	return m
}

// TestExchange: the client serves copies of what it gave, takes copy-outs
// into it, ends at the answer, and refuses anything else.
func TestExchange(t *testing.T) {
	cmd := make([]byte, cmdSize)
	copy(cmd, "pool/fs")
	mem := memory{cmdAddr: cmd}
	out := append(msg(copyinReq, cmdAddr, cmdSize), msg(copyoutReq, cmdAddr+4, 3)...)
	out = append(out, "new"...)
	out = append(out, msg(ioctlAns, 0, 0)...)
	x := &rw{Reader: bytes.NewReader(out)}
	if err := exchange(x, iocSnapshot, mem, nil); err != nil {
		t.Fatal(err)
	}
	if w := x.w.Bytes(); len(w) != msgSize+cmdSize || binary.LittleEndian.Uint32(w[8:]) != iocSnapshot || string(w[msgSize:msgSize+8]) != "pool/fs\x00" {
		t.Fatalf("the client wrote %d bytes, want its request and the command", len(w))
	}
	if string(cmd[:7]) != "poolnew" {
		t.Fatalf("after the copy-out the command starts %q", cmd[:7])
	}
	// A descriptor: passed when asked for by its token, and only then.
	sent := 0
	sendFD := func() error { sent++; return nil }
	x = &rw{Reader: bytes.NewReader(append(msg(getfReq, fdToken, 0), msg(ioctlAns, 0, 0)...))}
	if err := exchange(x, iocSend, memory{cmdAddr: make([]byte, cmdSize)}, sendFD); err != nil || sent != 1 {
		t.Fatalf("asked for the descriptor: %v, passed %d times", err, sent)
	}
	x = &rw{Reader: bytes.NewReader(msg(getfReq, 7, 0))}
	if err := exchange(x, iocSend, memory{cmdAddr: make([]byte, cmdSize)}, sendFD); !errors.Is(err, ErrProtocol) || sent != 1 {
		t.Fatalf("asked for another descriptor: %v, passed %d times", err, sent)
	}
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"errno":           {msg(ioctlAns, uint64(syscall.EBUSY), 0), syscall.EBUSY},
		"other layout":    {msg(copyinReq, cmdAddr, cmdSize-8), ErrLayout},
		"outside":         {msg(copyinReq, cmdAddr+cmdSize-2, 4), ErrProtocol},
		"wrapping":        {msg(copyoutReq, cmdAddr+8, ^uint64(0)-4), ErrProtocol},
		"unknown address": {msg(copyinReq, 0x42, 1), ErrProtocol},
		"descriptor":      {msg(getfReq, 3, 0), ErrProtocol},
		"cut short":       {msg(copyinReq, cmdAddr, cmdSize)[:10], ErrProtocol},
		"closed":          {nil, ErrProtocol},
	} {
		err := exchange(&rw{Reader: bytes.NewReader(tc.in)}, iocSnapshot, memory{cmdAddr: make([]byte, cmdSize)}, nil)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// TestCheck: the layout is the daemon's first request's size.
func TestCheck(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"this layout":    {msg(copyinReq, cmdAddr, cmdSize), nil},
		"another layout": {msg(copyinReq, cmdAddr, 5440), ErrLayout},
		"an answer":      {msg(ioctlAns, 22, 0), ErrProtocol},
		"nothing":        {nil, ErrProtocol},
	} {
		x := &rw{Reader: bytes.NewReader(tc.in)}
		if err := check(x); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if w := x.w.Bytes(); len(w) != msgSize || binary.LittleEndian.Uint32(w[8:]) != iocObjsetStats {
			t.Errorf("%s: the client wrote %x, want an OBJSET_STATS request alone", name, w)
		}
	}
}

// TestRefusedNames: a name the command would refuse is refused before
// any daemon is dialed (the socket here does not exist: a dial would
// give a DialError).
func TestRefusedNames(t *testing.T) {
	c := New(t.TempDir() + "/none")
	ctx := context.Background()
	long := strings.Repeat("x", nameMax)
	for _, n := range [][2]string{{"", "a"}, {"p/fs", ""}, {"p/fs@x", "a"}, {"p/fs", "a@b"}, {"p/\x00", "a"}, {long, "a"}} {
		var de *DialError
		if err := c.Snapshot(ctx, n[0], n[1], nil); err == nil || errors.As(err, &de) {
			t.Errorf("Snapshot(%q, %q): %v, want a refusal before dialing", n[0], n[1], err)
		}
	}
	for _, to := range []string{"p/fs", "p/fs@", "@a", "p/fs@a@b"} {
		var de *DialError
		if err := c.Send(ctx, to, "", nil); err == nil || errors.As(err, &de) {
			t.Errorf("Send(%q): %v, want a refusal before dialing", to, err)
		}
		if err := c.Receive(ctx, to, false, nil); err == nil || errors.As(err, &de) {
			t.Errorf("Receive(%q): %v, want a refusal before dialing", to, err)
		}
	}
}

// TestCheckCancelled: a daemon that never answers holds Check only until
// its context is cancelled.
func TestCheckCancelled(t *testing.T) {
	path := t.TempDir() + "/sock"
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if conn, err := l.Accept(); err == nil {
			defer conn.Close()
			_, _ = io.Copy(io.Discard, conn) // reads the request, says nothing
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(path).Check(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Check of a silent daemon succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Check of a silent daemon did not end with its context")
	}
}

// FuzzExchange: whatever a daemon sends, the client returns, touching
// only the buffers it gave.
func FuzzExchange(f *testing.F) {
	f.Add(append(msg(copyinReq, cmdAddr, cmdSize), msg(ioctlAns, 0, 0)...))
	f.Add(append(msg(copyoutReq, nvlistAdr, 4), 1, 2, 3, 4))
	f.Add(msg(ioctlAns, 2, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		nvl := make([]byte, 64)
		_ = exchange(&rw{Reader: bytes.NewReader(in)}, iocSnapshot, memory{cmdAddr: make([]byte, cmdSize), nvlistAdr: nvl}, func() error { return nil })
		_ = check(&rw{Reader: bytes.NewReader(in)})
		if len(nvl) != 64 {
			t.Fatal("a buffer changed size")
		}
	})
}

// TestStreamsThroughDaemon sends an increment through the socket into a
// pipe and receives it from the pipe through the socket, as a push's
// two nodes do with their socket; and refuses what the command refuses.
func TestStreamsThroughDaemon(t *testing.T) {
	pool, _ := zfstest.NewPool(t, 256<<20)
	c := New(DefaultPath)
	ctx := context.Background()
	if err := c.Check(ctx); err != nil {
		t.Fatalf("this test needs zfs-fuse's command socket at %s (zfs-fuse, not OpenZFS): %v", DefaultPath, err)
	}
	a, b := pool+"/a", pool+"/b"
	zfstest.ZFS(t, "create", a)
	zfstest.ZFS(t, "snapshot", a+"@1")
	zfstest.ZFS(t, "snapshot", a+"@2")
	if out, err := exec.Command("sh", "-c", "zfs send "+a+"@1 | zfs receive "+b).CombinedOutput(); err != nil {
		t.Fatalf("the base by the command: %v: %s", err, out)
	}
	// push sends from a to b@2 through a pipe; both ends through the socket.
	push := func(from, to, dest string) (sendErr, recvErr error) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			err := c.Send(ctx, to, from, w)
			w.Close()
			done <- err
		}()
		recvErr = c.Receive(ctx, dest, true, r)
		r.Close()
		return <-done, recvErr
	}
	if serr, rerr := push("1", a+"@2", b+"@2"); serr != nil || rerr != nil {
		t.Fatalf("increment 1 -> 2: send %v, receive %v", serr, rerr)
	}
	guid := func(s string) string { return strings.TrimSpace(zfstest.ZFS(t, "get", "-H", "-o", "value", "guid", s)) }
	if g1, g2 := guid(a+"@2"), guid(b+"@2"); g1 != g2 {
		t.Fatalf("received snapshot's guid %s, sent %s", g2, g1)
	}

	// An increment from a snapshot b lacks.
	zfstest.ZFS(t, "snapshot", a+"@3")
	zfstest.ZFS(t, "snapshot", a+"@4")
	if _, rerr := push("3", a+"@4", b+"@4"); !errors.Is(rerr, syscall.ENODEV) {
		t.Fatalf("an increment onto a base b lacks: %v, want ENODEV", rerr)
	}
	if out, err := exec.Command("zfs", "list", "-H", b+"@4").CombinedOutput(); err == nil {
		t.Fatalf("a refused increment made %s", out)
	}
	// From a later snapshot: zfs refuses to send.
	if serr, _ := push("4", a+"@2", b+"@x"); serr == nil {
		t.Fatal("sending 4 -> 2: no error")
	}

	// A complete stream is not an increment: refused once its first
	// record is read, before the daemon sees it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("zfs", "send", a+"@1")
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := c.Receive(ctx, pool+"/c@1", true, r); !errors.Is(err, ErrStream) {
		t.Fatalf("a complete stream: %v, want ErrStream", err)
	}
	r.Close()
	_ = cmd.Wait()
	// A stream that ends at once.
	r, w, _ = os.Pipe()
	w.Close()
	if err := c.Receive(ctx, b+"@4", true, r); !errors.Is(err, ErrStream) {
		t.Fatalf("an empty stream: %v, want ErrStream", err)
	}
	r.Close()
}
