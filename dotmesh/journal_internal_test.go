package dotmesh

import (
	"context"
	"testing"
	"time"
)

// TestJournalGateAsks: an answered commit's transaction waits for its
// turn until a registry access waits for it; the access asks it to start
// at once, and a transaction that enters later waits for a new ask.
func TestJournalGateAsks(t *testing.T) {
	var g journalGate
	leave, asked := g.enter()
	select {
	case <-asked:
		t.Fatal("asked before any registry access")
	default:
	}
	start := time.Now()
	awaitJournalTurn(asked)
	if d := time.Since(start); d < journalDelay {
		t.Fatalf("an unasked transaction started after %s, before journalDelay (%s)", d, journalDelay)
	}
	done := make(chan error, 1)
	go func() { done <- g.wait(context.Background()) }()
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting registry access did not ask the transaction in flight to start")
	}
	select {
	case err := <-done:
		t.Fatalf("the access passed the gate (%v) before the transaction ended", err)
	case <-time.After(20 * time.Millisecond):
	}
	leave()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	leave2, asked2 := g.enter()
	defer leave2()
	select {
	case <-asked2:
		t.Fatal("a transaction entered after the ask starts asked")
	default:
	}
}
