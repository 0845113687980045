package dotmesh_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// keptOf applies g to times (newest first) and returns the kept ones.
func keptOf(g dotmesh.KeepGrid, times ...string) []string {
	ts := make([]time.Time, len(times))
	for i, s := range times {
		ts[i] = at(s)
	}
	var out []string
	for i, why := range g.Keep(ts) {
		if len(why) > 0 {
			out = append(out, times[i])
		}
	}
	return out
}

// TestKeepGridRestic: hand-worked cases of restic's forget semantics.
func TestKeepGridRestic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grid  dotmesh.KeepGrid
		times []string
		want  []string
	}{
		{"last keeps the newest N", dotmesh.KeepGrid{Last: 3},
			[]string{"2026-01-02 10:00", "2026-01-02 09:00", "2026-01-02 08:00", "2026-01-02 07:00", "2026-01-02 06:00"},
			[]string{"2026-01-02 10:00", "2026-01-02 09:00", "2026-01-02 08:00"}},
		{"daily keeps the newest of each day", dotmesh.KeepGrid{Daily: 2},
			[]string{"2026-01-03 23:00", "2026-01-03 01:00", "2026-01-02 18:00", "2026-01-02 06:00", "2026-01-01 12:00"},
			[]string{"2026-01-03 23:00", "2026-01-02 18:00"}},
		{"fields add up; a commit kept twice counts in both", dotmesh.KeepGrid{Hourly: 2, Daily: 2},
			[]string{"2026-01-02 10:30", "2026-01-02 10:10", "2026-01-02 09:50", "2026-01-02 09:10", "2026-01-01 23:00", "2026-01-01 08:00"},
			[]string{"2026-01-02 10:30", "2026-01-02 09:50", "2026-01-01 23:00"}},
		{"counts left keep the oldest too", dotmesh.KeepGrid{Daily: 5},
			[]string{"2026-01-02 12:00", "2026-01-02 08:00", "2026-01-01 12:00", "2026-01-01 08:00"},
			[]string{"2026-01-02 12:00", "2026-01-01 12:00", "2026-01-01 08:00"}},
		{"last with counts left does not add the oldest", dotmesh.KeepGrid{Last: 2, Daily: 1},
			[]string{"2026-01-02 12:00", "2026-01-02 08:00", "2026-01-01 12:00"},
			[]string{"2026-01-02 12:00", "2026-01-02 08:00"}},
		{"weeks are ISO weeks", dotmesh.KeepGrid{Weekly: 2},
			[]string{"2026-01-05 10:00", "2026-01-04 10:00", "2025-12-29 10:00", "2025-12-28 10:00"},
			[]string{"2026-01-05 10:00", "2026-01-04 10:00"}},
		{"monthly and yearly", dotmesh.KeepGrid{Monthly: 2, Yearly: 3},
			[]string{"2026-03-01 10:00", "2026-02-20 10:00", "2026-02-01 10:00", "2025-12-31 10:00", "2025-06-01 10:00", "2024-01-01 10:00"},
			[]string{"2026-03-01 10:00", "2026-02-20 10:00", "2025-12-31 10:00", "2024-01-01 10:00"}},
		{"the zero grid keeps everything", dotmesh.KeepGrid{},
			[]string{"2026-01-02 12:00", "2026-01-02 08:00"},
			[]string{"2026-01-02 12:00", "2026-01-02 08:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keptOf(tc.grid, tc.times...); !slices.Equal(got, tc.want) {
				t.Fatalf("%s keeps %v, want %v", tc.grid, got, tc.want)
			}
		})
	}
}

func TestParseKeepGrid(t *testing.T) {
	g, err := dotmesh.ParseKeepGrid("last=4,hourly=24,daily=7,weekly=4,monthly=12")
	if err != nil {
		t.Fatal(err)
	}
	if want := (dotmesh.KeepGrid{Last: 4, Hourly: 24, Daily: 7, Weekly: 4, Monthly: 12}); g != want {
		t.Fatalf("parsed %+v, want %+v", g, want)
	}
	if s := g.String(); s != "last=4,hourly=24,daily=7,weekly=4,monthly=12" {
		t.Fatalf("String() = %q", s)
	}
	for _, bad := range []string{"", "last", "last=x", "last=-1", "minutely=3", "last=1,last=2", "last=0", "daily=10000001", "last=1,,daily=2"} {
		_, err := dotmesh.ParseKeepGrid(bad)
		if !errors.Is(err, dotmesh.ErrInvalidArgument) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseKeepGrid(%q) = %v; want a one-line ErrInvalidArgument", bad, err)
		}
	}
}

func TestParseEvery(t *testing.T) {
	for in, want := range map[string]time.Duration{"15m": 15 * time.Minute, "1h30m": 90 * time.Minute, "2s": 2 * time.Second, "1d": 24 * time.Hour, "2w": 14 * 24 * time.Hour} {
		got, err := dotmesh.ParseEvery(in)
		if err != nil || time.Duration(got) != want {
			t.Errorf("ParseEvery(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := dotmesh.ParseEvery(got.String()); err != nil || back != got {
			t.Errorf("%q prints as %q, which reads back as %v, %v", in, got.String(), back, err)
		}
	}
	for _, bad := range []string{"", "0s", "500ms", "-1m", "367d", "fortnight", "d", "99999999999999999999d", "1.5d"} {
		if _, err := dotmesh.ParseEvery(bad); !errors.Is(err, dotmesh.ErrInvalidArgument) {
			t.Errorf("ParseEvery(%q) = %v; want ErrInvalidArgument", bad, err)
		}
	}
}
