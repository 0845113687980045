package neutral

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
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
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		if err := Write(dir, discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	var stream bytes.Buffer
	if err := Write(benchTree(b), &stream); err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(out, "r"+string(rune('a'+i%26)))
		os.RemoveAll(dir)
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := Read(bytes.NewReader(stream.Bytes()), dir); err != nil {
			b.Fatal(err)
		}
	}
}

// discard is io.Discard without its ReaderFrom, so a benchmark measures
// the writer's own path.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
