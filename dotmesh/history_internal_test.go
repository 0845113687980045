package dotmesh

import (
	"testing"
	"time"
)

// The fast read of id and parent agrees with a full decode for every
// record encode writes; a change of Commit's field order that breaks
// the fast path fails here.
func FuzzCommitLinkOf(f *testing.F) {
	f.Add("c1", "p1", "msg", "k", "v")
	f.Add("c2", "", `"parent":"x"`, "parent", "y")
	f.Fuzz(func(t *testing.T, id, parent, msg, k, v string) {
		c := Commit{ID: CommitID(id), Dot: "d", Branch: "master", Parent: CommitID(parent), Author: "a", Time: time.Unix(1, 0),
			Message: msg, Metadata: map[string]string{k: v}, Info: map[string]string{InfoAddedBytes: "1"}}
		// Compared with a full decode: JSON replaces invalid UTF-8.
		rec := encode(&c)
		wantID, wantParent, err := fullCommitLink(rec)
		if err != nil {
			t.Fatal(err)
		}
		gotID, gotParent, err := commitLinkOf(rec)
		if err != nil {
			t.Fatalf("commitLinkOf(%s): %v", rec, err)
		}
		if gotID != wantID || gotParent != wantParent {
			t.Fatalf("commitLinkOf(%s) = %q, %q; want %q, %q", rec, gotID, gotParent, wantID, wantParent)
		}
	})
}

// Any bytes: an error or an answer, never a panic; valid records in
// another field order are read in full.
func TestCommitLinkOfOtherShapes(t *testing.T) {
	for in, want := range map[string][2]CommitID{
		`{"author":"a","parent":"p","id":"i"}`: {"i", "p"},
		`{"id":"i","author":"a"}`:              {"i", ""},
		`{"id":"i","parent":"p","x":1}`:        {"i", "p"},
	} {
		id, parent, err := commitLinkOf([]byte(in))
		if err != nil || id != want[0] || parent != want[1] {
			t.Errorf("commitLinkOf(%s) = %q, %q, %v; want %q, %q", in, id, parent, err, want[0], want[1])
		}
	}
	for _, in := range []string{``, `[`, `{"id":1}`, `{"id":"i","parent":`} {
		if _, _, err := commitLinkOf([]byte(in)); err == nil {
			t.Errorf("commitLinkOf(%q) accepted", in)
		}
	}
}
