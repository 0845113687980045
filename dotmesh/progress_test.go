package dotmesh_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Without a progress function nothing reports and the meter's methods
// are no-ops that pass data through.
func TestProgressMeterWithoutFunction(t *testing.T) {
	ctx := context.Background()
	if dotmesh.ProgressFunc(ctx) != nil || dotmesh.ProgressFunc(dotmesh.WithProgress(ctx, nil)) != nil {
		t.Fatal("a progress function where none was given")
	}
	m := dotmesh.StartProgress(ctx, "hashing", 10)
	if m != nil {
		t.Fatal("a meter without a progress function")
	}
	m.Add(5)
	m.Done()
	dotmesh.ReportPhase(ctx, "finishing")
	var buf bytes.Buffer
	if _, err := io.Copy(m.Writer(&buf), m.Reader(strings.NewReader("data"))); err != nil || buf.String() != "data" {
		t.Fatalf("copy through a nil meter: %q, %v", buf.String(), err)
	}
}

// A meter reports its start, thins out its counts to one per
// ProgressInterval, and ends at its total; Writer and Reader count.
func TestProgressMeterReports(t *testing.T) {
	var mu sync.Mutex
	var got []dotmesh.Progress
	ctx := dotmesh.WithProgress(context.Background(), func(p dotmesh.Progress) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	})
	m := dotmesh.StartProgress(ctx, "writing", 1000)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				m.Add(1)
			}
		}()
	}
	wg.Wait()
	if len(got) != 1 || got[0] != (dotmesh.Progress{Phase: "writing", Total: 1000}) {
		t.Fatalf("reports within one interval: %+v", got)
	}
	time.Sleep(dotmesh.ProgressInterval + 10*time.Millisecond)
	if _, err := io.Copy(m.Writer(io.Discard), m.Reader(strings.NewReader(strings.Repeat("x", 100)))); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Bytes != 500 { // the Read after the interval reports; the Write, within the next, does not
		t.Fatalf("after an interval: %+v", got)
	}
	m.Done()
	if last := got[len(got)-1]; last.Bytes != 1000 || last.Total != 1000 || last.Phase != "writing" {
		t.Fatalf("done: %+v", got)
	}

	// Unknown total: Done ends at the count, as 100%.
	got = nil
	u := dotmesh.StartProgress(ctx, "dumping db", 0)
	u.Add(7)
	u.Done()
	dotmesh.ReportPhase(ctx, "finishing")
	if len(got) != 3 || got[1] != (dotmesh.Progress{Phase: "dumping db", Bytes: 7, Total: 7}) || got[2] != (dotmesh.Progress{Phase: "finishing"}) {
		t.Fatalf("unknown total: %+v", got)
	}
}
