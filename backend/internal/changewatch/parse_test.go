package changewatch

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// event renders one struct fanotify_event_metadata of n bytes.
func event(n uint32, mask uint64, fd int32) []byte {
	b := make([]byte, n)
	binary.NativeEndian.PutUint32(b[0:4], n)
	b[4] = unix.FANOTIFY_METADATA_VERSION
	binary.NativeEndian.PutUint16(b[6:8], unix.FAN_EVENT_METADATA_LEN)
	binary.NativeEndian.PutUint64(b[8:16], mask)
	binary.NativeEndian.PutUint32(b[16:20], uint32(fd))
	return b
}

func TestParseEvents(t *testing.T) {
	b := append(event(24, unix.FAN_MODIFY, 7), event(32, unix.FAN_Q_OVERFLOW, -1)...)
	b = append(b, event(24, unix.FAN_MODIFY, 9)[:20]...) // cut short
	var got []int32
	parseEvents(b, func(mask uint64, fd int32) { got = append(got, fd) })
	if len(got) != 2 || got[0] != 7 || got[1] != -1 {
		t.Fatalf("parsed %v, want [7 -1] and the cut event left out", got)
	}
}

// FuzzParseEvents: no input makes the parser read out of bounds or loop
// forever; every event it reports lies within the input.
func FuzzParseEvents(f *testing.F) {
	f.Add(event(24, unix.FAN_MODIFY, 3))
	f.Add(append(event(24, unix.FAN_MODIFY, 3), event(40, unix.FAN_Q_OVERFLOW, -1)...))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		parseEvents(b, func(uint64, int32) { n++ })
		if n > len(b)/unix.FAN_EVENT_METADATA_LEN {
			t.Fatalf("%d events from %d bytes", n, len(b))
		}
	})
}
