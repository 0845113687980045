package neutral

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// benchSize is the large file of the throughput benchmarks: big enough
// that per-record costs vanish, small enough for a shared test machine.
const benchSize = 64 << 20

// benchTree is a directory holding one benchSize file of varied bytes.
func benchTree(b *testing.B) string {
	dir := b.TempDir()
	data := make([]byte, benchSize)
	for i := range data {
		data[i] = byte(i * 7 >> 3)
	}
	if err := os.WriteFile(filepath.Join(dir, "big"), data, 0o600); err != nil {
		b.Fatal(err)
	}
	return dir
}

func BenchmarkWrite(b *testing.B) {
	dir := benchTree(b)
	defer measure(b)()
	for range b.N {
		if err := Write(dir, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	stream := benchStream(b)
	out := b.TempDir()
	defer measure(b)()
	for i := range b.N {
		dir := filepath.Join(out, "r"+string(rune('a'+i%26)))
		os.RemoveAll(dir)
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := Read(bytes.NewReader(stream), dir); err != nil {
			b.Fatal(err)
		}
	}
}

// measure starts timing benchSize bytes an op; what it returns reports
// the throughput per CPU second too (user and system, all threads): on
// a shared machine wall-clock MB/s swing with the load, CPU time less.
func measure(b *testing.B) func() {
	b.SetBytes(benchSize)
	b.ResetTimer()
	cpu := func() float64 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64(benchSize)*float64(b.N)/1e6/(cpu()-start), "MB/cpu-s")
	}
}

// discard is io.Discard without its ReaderFrom, so a benchmark measures
// the writer's own path.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// benchStream is the stream of one benchSize file.
func benchStream(b *testing.B) []byte {
	var stream bytes.Buffer
	if err := Write(benchTree(b), &stream); err != nil {
		b.Fatal(err)
	}
	return stream.Bytes()
}

func BenchmarkScan(b *testing.B) {
	stream := benchStream(b)
	defer measure(b)()
	for range b.N {
		err := Scan(bytes.NewReader(stream), func(e Entry, c io.Reader) error {
			_, err := io.Copy(discard{}, c)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriter(b *testing.B) {
	data := benchStream(b)
	defer measure(b)()
	for range b.N {
		w, err := NewWriter(discard{})
		if err != nil {
			b.Fatal(err)
		}
		e := Entry{Kind: KindFile, Path: "big", MTime: time.Unix(1, 0), Size: benchSize}
		if err := w.Add(e, bytes.NewReader(data[:benchSize])); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
