package main

import (
	"fmt"
	"io"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/zeebo/blake3"

	"github.com/dotmesh-io/dotmesh/internal/cdc"
)

// --- zfs → files (the backend-neutral stream) ---
//
// A dot committed on a zfs node is pushed to a files node, so that every
// commit travels as the backend-neutral stream. The tree is
// min(-push-size, crossMaxSize) of incompressible data in 64 MiB files;
// after the first push (not timed) each run changes 2 bytes at a random
// offset of one file, commits (not timed) and times the incremental push
// against rsync of the same change between two local copies
// (`rsync -a --no-whole-file --stats`, which reads both versions and
// sends the changed blocks), in turns first, syncing before each side.
//
// Bytes are measured against the changed chunks: the bytes of the new
// version's chunks that the old version lacks, cut as the files backend
// cuts files (the dump store's chunker and parameters), which is what
// that backend stores and what a chunk have/want exchange would move.
// Target: at most 1.1 (issue 22). Time: against rsync, at most 1.5.

// crossMaxSize bounds the cross-backend tree: its first push sends it
// whole through a zfs clone, which zfs-fuse reads slowly.
const crossMaxSize = 128 << 20

// storeChunks are the files backend's file chunks (backend/dump/chunk.go).
var storeChunks = cdc.Params{Min: 256 << 10, Max: 4 << 20, AvgBits: 18}

func pushZFSFiles(dm string, size int64, runs int, keep bool) (rows []func(*verdicts), err error) {
	if err := zfsKind.check(); err != nil {
		return nil, err
	}
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		return nil, skipped{"rsync is not installed (apt-get install rsync); this part compares against it"}
	}
	size = min(size, crossMaxSize)
	work, err := os.MkdirTemp("", "dotmesh-bench-push-cross-")
	if err != nil {
		return nil, err
	}
	pool := "dmbpush" + randHex(4) + "x"
	var rig *pushRig
	defer func() {
		if rig != nil {
			rig.stop()
		}
		zpoolDestroy(pool) // after the node has stopped
		if keep {
			fmt.Printf("  kept %s\n", work)
		} else {
			os.RemoveAll(work)
		}
	}()
	fmt.Printf("  starting a zfs node (pool %s) and a files node; %s tree, 2-byte changes\n", pool, human(size))
	rig, err = startPushRig(dm, work, func(name string) []string {
		if name == "a" {
			return []string{"--backend", "zfs", "--zfs-pool", pool, "--pool-size", strconv.FormatInt(2*size+(1<<30), 10)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	dir, _, err := rig.fill(size)
	if err != nil {
		return nil, err
	}
	dst := filepath.Join(work, "rsync-copy")
	if _, out, err := timedCmd(exec.Command(rsync, "-a", dir+"/", dst+"/")); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	files, err := regularFiles(dir)
	if err != nil {
		return nil, err
	}
	rng := mrand.New(mrand.NewSource(size + 22))
	var samples []pushSample
	var changed []float64
	for i := 0; i < runs; i++ {
		f := files[rng.Intn(len(files))]
		before, err := chunkHashes(f)
		if err != nil {
			return nil, err
		}
		if err := changeTwoBytes(f, rng); err != nil {
			return nil, err
		}
		cb, err := changedChunkBytes(f, before)
		if err != nil {
			return nil, err
		}
		syscall.Sync()
		if _, err := rig.sh("--remote", "a", "-H", "commit", "--dot", "bench", "-m", fmt.Sprint("2 bytes changed, run ", i+1)); err != nil {
			return nil, err
		}
		var s pushSample
		var format string
		err = inTurns(i, func() error {
			syscall.Sync()
			d, res, err := rig.push()
			s.dmTime, s.dmBytes, s.dmServer, format = d, res.Bytes, res.Duration, res.Format
			return err
		}, func() error {
			syscall.Sync()
			var err error
			s.refTime, s.refBytes, err = rsyncChange(rsync, dir, dst)
			return err
		})
		if err != nil {
			return nil, err
		}
		if format != "neutral" {
			return nil, fmt.Errorf("dm push used the %q stream, not the neutral one", format)
		}
		fmt.Printf("  run %d: dm push %d B in %v; changed chunks %s; rsync sent %d B in %v\n", i+1,
			s.dmBytes, s.dmTime.Round(time.Millisecond), human(cb), s.refBytes, s.refTime.Round(time.Millisecond))
		samples = append(samples, s)
		changed = append(changed, float64(s.dmBytes)/float64(cb))
	}
	var dmT, refT []time.Duration
	var rt, rb []float64
	for _, s := range samples {
		dmT, refT = append(dmT, s.dmTime), append(refT, s.refTime)
		rt = append(rt, s.dmTime.Seconds()/s.refTime.Seconds())
		rb = append(rb, float64(s.dmBytes)/float64(s.refBytes))
	}
	fmt.Printf("  medians of %d runs: dm push %v, rsync %v; bytes dm/rsync %.3f\n", len(samples),
		median(dmT).Round(time.Millisecond), median(refT).Round(time.Millisecond), medianF(rb))
	b, t := medianF(changed), medianF(rt)
	return []func(*verdicts){
		func(v *verdicts) { v.row("zfs→files: bytes dm push / changed chunks", b, "<= 1.1", b <= 1.1) },
		func(v *verdicts) { v.row("zfs→files: time dm push / rsync --no-whole-file", t, "<= 1.5", t <= 1.5) },
	}, nil
}

// changeTwoBytes flips two adjacent bytes at a random offset of file f,
// in place.
func changeTwoBytes(f string, rng *mrand.Rand) error {
	fh, err := os.OpenFile(f, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	st, err := fh.Stat()
	if err != nil || st.Size() < 2 {
		fh.Close()
		return fmt.Errorf("changing %s: %v (size %d)", f, err, st.Size())
	}
	off := rng.Int63n(st.Size() - 1)
	var b [2]byte
	if _, err := fh.ReadAt(b[:], off); err != nil {
		fh.Close()
		return err
	}
	b[0], b[1] = ^b[0], b[1]^0x5a
	if _, err := fh.WriteAt(b[:], off); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// chunkHashes cuts file f as the files backend does and returns its
// chunks' hashes.
func chunkHashes(f string) (map[[32]byte]bool, error) {
	hs := map[[32]byte]bool{}
	_, err := eachChunk(f, func(c []byte) { hs[blake3.Sum256(c)] = true })
	return hs, err
}

// changedChunkBytes is the bytes of file f's chunks not in before.
func changedChunkBytes(f string, before map[[32]byte]bool) (int64, error) {
	var n int64
	_, err := eachChunk(f, func(c []byte) {
		if !before[blake3.Sum256(c)] {
			n += int64(len(c))
		}
	})
	return n, err
}

func eachChunk(f string, fn func([]byte)) (int64, error) {
	fh, err := os.Open(f)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	ch := cdc.New(fh, storeChunks)
	buf := make([]byte, storeChunks.Max)
	var total int64
	for {
		c, err := ch.Next(buf)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		fn(c.Data)
		total += int64(c.Length)
		buf = c.Data
	}
}
