package dump

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// offeredChunk is a chunk as a sender offers it: hash, length, zstd frame.
type offeredChunk struct {
	h     cas.Hash
	data  []byte
	frame []byte
}

// offeredChunks cuts data as a commit does and compresses each chunk.
func offeredChunks(t *testing.T, b *Guarded, data []byte) []offeredChunk {
	t.Helper()
	c := newChunker(bytes.NewReader(data), fileChunks)
	var out []offeredChunk
	for {
		ch, err := c.Next(make([]byte, 0, fileChunks.Max))
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, offeredChunk{cas.Sum(ch.Data), ch.Data, b.b.store.Compress(ch.Data, nil)})
	}
}

func textBytes(n int) []byte {
	var buf bytes.Buffer
	for i := 0; buf.Len() < n; i++ {
		fmt.Fprintf(&buf, "line %d: %d\n", i, i*7919%100003)
	}
	return buf.Bytes()[:n]
}

func pinExists(b *Guarded, c dotmesh.CommitRef) bool {
	_, err := os.Stat(b.b.pinPath(c))
	return err == nil
}

// Chunks staged through StageChunks are stored (in steps, pinned for the
// commit) before the commit, which takes an offered file's chunks from its
// list and reads only the others; Release after the commit drops the pin.
func TestStageChunks(t *testing.T) {
	b := openTest(t)
	b.b.recvFlushTest.Store(64 << 10) // publish in steps
	br := newBranch(t, b)
	data := textBytes(3 << 20)
	writeFile(t, filepath.Join(treeOf(t, b, br), "d/big.txt"), data, 0o644)
	chunks := offeredChunks(t, b, data)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks; the test wants several", len(chunks))
	}
	chunks[1].frame = nil // the sink compresses it
	// other.txt's chunk is offered but not its list, lost.txt's list but
	// not its chunk: the commit reads both.
	other, lost := textBytes(100<<10), randomBytes(5, 1000)
	writeFile(t, filepath.Join(treeOf(t, b, br), "other.txt"), other, 0o644)
	writeFile(t, filepath.Join(treeOf(t, b, br), "lost.txt"), lost, 0o644)
	c := dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}
	sink, err := b.StageChunks(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var list []dotmesh.FileChunk
	for _, ch := range append(chunks, chunks[0], offeredChunks(t, b, other)[0]) { // one twice: taken once
		if err := sink.PutChunk(ch.h, ch.data, ch.frame); err != nil {
			t.Fatal(err)
		}
		list = append(list, dotmesh.FileChunk{Hash: ch.h, Size: uint32(len(ch.data))})
	}
	if err := sink.PutFile("d/big.txt", int64(len(data)), list[:len(chunks)]); err != nil {
		t.Fatal(err)
	}
	if err := sink.PutFile("lost.txt", int64(len(lost)), []dotmesh.FileChunk{{Hash: cas.Sum(lost), Size: uint32(len(lost))}}); err != nil {
		t.Fatal(err)
	}
	if err := sink.PutFile("other.txt", int64(len(other)+1), list[len(list)-1:]); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("a list short of the file's size: %v, want ErrInvalidArgument", err)
	}
	// Published in the background, while the next chunks come.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ok, _ := b.b.store.Has(chunks[0].h); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a staged chunk is not stored 10 s after a step's worth of bytes")
		}
	}
	if err := sink.PutChunk(chunks[0].h, nil, chunks[0].frame); !errors.Is(err, dotmesh.ErrInvalidArgument) {
		t.Fatalf("a chunk of 0 bytes: %v, want ErrInvalidArgument", err)
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chunks {
		if ok, _ := b.b.store.Has(ch.h); !ok {
			t.Fatalf("chunk %s is not stored after Flush", ch.h.Short())
		}
	}
	if !pinExists(b, c) {
		t.Fatal("the staged chunks are not pinned for the commit")
	}
	facts, err := b.Commit(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if n, want := fact(t, facts, "bytes_read"), int64(len(other)+len(lost)); n != want {
		t.Fatalf("the commit read %d bytes, want %d (not big.txt, offered)", n, want)
	}
	if n := fact(t, facts, "new_bytes"); n >= int64(len(other)+len(lost))+64<<10 {
		t.Fatalf("the commit compressed %d bytes; big.txt's chunks were staged", n)
	}
	sink.Release()
	if pinExists(b, c) {
		t.Fatal("the pin outlives Release after the commit")
	}
	rep, err := b.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damaged)+len(rep.Problems) > 0 {
		t.Fatalf("verify: %+v", rep)
	}
	// Restored from the store, the commit has the file's bytes.
	br2 := dotmesh.BranchRef{Dot: br.Dot, Branch: "restored"}
	if err := b.CreateBranch(ctx, br2, &c); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][]byte{"d/big.txt": data, "other.txt": other, "lost.txt": lost} {
		got, err := os.ReadFile(filepath.Join(treeOf(t, b, br2), p))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("restored %s: %d bytes, err %v; want the %d written", p, len(got), err, len(want))
		}
	}
}

// A receive that breaks off (Release without Flush) keeps what it staged,
// published and pinned for a re-run.
func TestStageChunksInterrupted(t *testing.T) {
	b := openTest(t)
	br := newBranch(t, b)
	chunks := offeredChunks(t, b, textBytes(1<<20))
	c := dotmesh.CommitRef{BranchRef: br, ID: dotmesh.NewCommitID()}
	sink, err := b.StageChunks(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.PutChunk(chunks[0].h, chunks[0].data, chunks[0].frame); err != nil {
		t.Fatal(err)
	}
	sink.Release()
	if ok, _ := b.b.store.Has(chunks[0].h); !ok {
		t.Fatal("the staged chunk of an interrupted receive is not kept")
	}
	if !pinExists(b, c) {
		t.Fatal("the kept chunk is not pinned")
	}
}
