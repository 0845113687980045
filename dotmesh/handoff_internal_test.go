package dotmesh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// TestReadersPassHandoffOn: the readers a transfer wraps its stream in
// (counting, counted, refreshing) pass a neutral.Pipe's hand-over on,
// counting its bytes as Read does, and answer neutral.ErrNoHandoff,
// reading nothing, over a reader that has none.
func TestReadersPassHandoffOn(t *testing.T) {
	var moved, counted atomic.Int64
	wrap := func(r io.Reader) io.Reader {
		r = &countingReader{r: r, n: &moved, every: 1 << 20, report: func() {}}
		r = countedReader{r, func(k int64) { counted.Add(k) }}
		return &refreshingReader{ctx: context.Background(), r: r, a: &activeReceive{}, every: time.Hour, now: time.Now, refresh: func(int64) {}}
	}
	pr, pw := neutral.Pipe()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)
	go func() {
		pw.Write(data)
		pw.Close()
	}()
	r := wrap(pr)
	var got bytes.Buffer
	k, err := neutral.WriteNTo(r, &got, int64(len(data)))
	if err != nil || k != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("handed over %d bytes, err %v; want %d", k, err, len(data))
	}
	if moved.Load() != k || counted.Load() != k {
		t.Fatalf("counted %d and %d bytes, want %d", moved.Load(), counted.Load(), k)
	}
	r = wrap(bytes.NewReader(data))
	if k, err := neutral.WriteNTo(r, &got, 10); k != 0 || !errors.Is(err, neutral.ErrNoHandoff) {
		t.Fatalf("over a plain reader: %d, %v; want 0, ErrNoHandoff", k, err)
	}
	if b, _ := io.ReadAll(r); !bytes.Equal(b, data) {
		t.Fatal("the plain reader lost bytes to the refused hand-over")
	}
}
