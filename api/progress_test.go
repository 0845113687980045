package api

import (
	"strings"
	"testing"
)

func TestWantsNDJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                  false,
		"application/json":                  false,
		NDJSON:                              true,
		NDJSON + ", application/json;q=0.5": true,
		"application/json, " + NDJSON:       false, // plain JSON first
		NDJSON + ";q=0, application/json":   false,
		"text/html, application/X-NDJSON":   true,
		"*/*":                               false,
		"bad;;, " + NDJSON:                  true,
	} {
		if got := WantsNDJSON(accept); got != want {
			t.Errorf("WantsNDJSON(%q) = %v, want %v", accept, got, want)
		}
	}
}

// FuzzWantsNDJSON: any Accept header is read without a panic, and a
// streamed answer only for one that names NDJSON.
func FuzzWantsNDJSON(f *testing.F) {
	f.Add(NDJSON + ", application/json;q=0.5")
	f.Add("application/json")
	f.Add(`application/x-ndjson; q="0"`)
	f.Fuzz(func(t *testing.T, accept string) {
		if WantsNDJSON(accept) && !strings.Contains(strings.ToLower(accept), NDJSON) {
			t.Fatalf("WantsNDJSON(%q) without NDJSON in it", accept)
		}
	})
}

func TestWantsHistoryLines(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                 false,
		"application/json": false,
		NDJSON:             false,
		HistoryLines:       true,
		HistoryLines + ", application/json;q=0.5": true,
		"application/json, " + HistoryLines:       false,
		HistoryLines + ";q=0, application/json":   false,
	} {
		if got := WantsHistoryLines(accept); got != want {
			t.Errorf("WantsHistoryLines(%q) = %v, want %v", accept, got, want)
		}
	}
}
