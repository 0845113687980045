package bigpipe

import (
	"bytes"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A writer runs a megabyte ahead of a reader that has not read yet, and
// the bytes arrive as written.
func TestNewRunsAhead(t *testing.T) {
	r, w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	if err := rc.Control(func(fd uintptr) { size, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil {
		t.Fatal(err)
	}
	if err != nil || size < Size {
		t.Fatalf("pipe capacity %d (%v), want %d (is /proc/sys/fs/pipe-max-size below it?)", size, err, Size)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), Size/16)
	// Nobody reads yet: a pipe of 64 KiB would block this write.
	if err := w.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("writing Size bytes with nobody reading: %v", err)
	}
	w.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want the %d written", len(got), err, len(data))
	}
}
