package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var reasonCases = []error{
	&dotmesh.NotFoundError{Kind: dotmesh.KindDot, Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}},
	&dotmesh.NotFoundError{Kind: dotmesh.KindBranch, Name: "dev", Dot: dotmesh.DotName{Namespace: "bob", Name: "web"}},
	&dotmesh.NotFoundError{Kind: dotmesh.KindIncoming, Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}},
	&dotmesh.NoCommitsError{Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}, Branch: "master"},
	&dotmesh.DirtyError{Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}, Branch: "master", Where: "this node", Bytes: 12},
	&dotmesh.PartlyRestoredError{Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}, Branch: "master", Target: "c1"},
	&dotmesh.MasterDownError{Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}, Branch: "master", Node: "n1"},
	&dotmesh.SourceBoundError{Ref: dotmesh.BranchRef{Dot: "d1", Branch: "master"}, Subdot: "db", Kind: "redis"},
	&dotmesh.InvalidOptionError{Option: "CommitOptions.Message", Problem: "a commit needs a message"},
	&dotmesh.UncommittedError{Dot: dotmesh.DotName{Namespace: "bob", Name: "web"}, Branch: "dev", Bytes: 5},
	&dotmesh.MountsInUseError{Op: "reset", Users: "docker container c1"},
	&dotmesh.DivergedError{Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}, Branch: "master", Common: "c1"},
	&dotmesh.DivergedError{Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}, Branch: "master", Start: "c2", Head: "c3"},
	&dotmesh.PermissionError{User: "bob", Action: "commit", Need: dotmesh.RoleWrite, Have: dotmesh.RoleRead, Dot: &dotmesh.DotName{Namespace: "alice", Name: "app"}},
	&dotmesh.PermissionError{User: "alice", Action: "commit", Need: dotmesh.RoleWrite, Have: dotmesh.RoleRead, Dot: &dotmesh.DotName{Namespace: "alice", Name: "app"}, ReadOnlyKey: true},
	&dotmesh.PermissionError{Action: "list users", Need: dotmesh.RoleAdmin},
	&dotmesh.HookError{Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}, Stage: dotmesh.HookPreCommit, Hook: "check.sh", Problem: "exit status 3: not ready"},
}

// wire sends err as a server does and decodes it as a client does.
func wire(t *testing.T, err error) *RemoteError {
	t.Helper()
	status, body := ErrorFor(err)
	b, jerr := json.Marshal(body)
	if jerr != nil {
		t.Fatal(jerr)
	}
	var back Error
	if jerr := json.Unmarshal(b, &back); jerr != nil {
		t.Fatal(jerr)
	}
	return &RemoteError{Status: status, Message: back.Error, Code: back.Code, Reason: back.Reason}
}

// TestReasonsRoundTrip: each typed error, wrapped by the node, comes back
// from the wire as the same type with the same data and sentinel.
func TestReasonsRoundTrip(t *testing.T) {
	for _, want := range reasonCases {
		re := wire(t, fmt.Errorf("doing it: %w", want))
		if re.Reason == nil {
			t.Fatalf("%v: no reason", want)
		}
		ptr := reflect.New(reflect.TypeOf(want)) // a **T for errors.As
		if !errors.As(re, ptr.Interface()) {
			t.Fatalf("%v: errors.As finds no %T in %#v", want, want, re)
		}
		got := ptr.Elem()
		if !reflect.DeepEqual(got.Interface(), want) {
			t.Fatalf("rebuilt %#v, want %#v", got.Interface(), want)
		}
		if re.Message != "doing it: "+want.Error() {
			t.Fatalf("message %q", re.Message)
		}
		if s := Sentinel(re.Code); !errors.Is(want, s) || !errors.Is(re, s) {
			t.Fatalf("%v: code %s", want, re.Code)
		}
	}
}

// TestReasonCause: a partly restored error's cause comes back with its
// message, sentinel and type.
func TestReasonCause(t *testing.T) {
	inner := &dotmesh.NotFoundError{Kind: dotmesh.KindCommit, Name: "c9", Dot: dotmesh.DotName{Namespace: "admin", Name: "app"}}
	re := wire(t, &dotmesh.PartlyRestoredError{Dot: inner.Dot, Branch: "master", Target: "c9", Err: fmt.Errorf("rolling back: %w", inner)})
	var pr *dotmesh.PartlyRestoredError
	var nf *dotmesh.NotFoundError
	if !errors.As(re, &pr) || !errors.As(re, &nf) || !errors.Is(re, dotmesh.ErrNotFound) || errors.Is(re, dotmesh.ErrConflict) {
		t.Fatalf("%#v", re)
	}
	if *nf != *inner || pr.Err.Error() != "rolling back: "+inner.Error() || re.Error() != pr.Error() {
		t.Fatalf("rebuilt %q, cause %#v", pr, nf)
	}
}

// TestNoReason: errors without a type send none, and a reason of an
// unknown type leaves the sentinel alone.
func TestNoReason(t *testing.T) {
	if _, body := ErrorFor(fmt.Errorf("%w: x", dotmesh.ErrNotFound)); body.Reason != nil {
		t.Fatalf("reason %+v", body.Reason)
	}
	re := &RemoteError{Message: "m", Code: "not_found", Reason: &Reason{Type: "no_tag"}}
	var nf *dotmesh.NotFoundError
	if errors.As(re, &nf) || !errors.Is(re, dotmesh.ErrNotFound) {
		t.Fatalf("%#v", re)
	}
}

// FuzzErrorBody: whatever error body a server sends, the client's error
// is built without panicking, keeps the code's sentinel, and its reason
// (when known) is stable: rebuilding what the rebuilt error sends gives
// the same reason again.
func FuzzErrorBody(f *testing.F) {
	for _, err := range reasonCases {
		_, body := ErrorFor(err)
		b, _ := json.Marshal(body)
		f.Add(b)
	}
	f.Add([]byte(`{"error":"x","code":"conflict","reason":{"type":"partly_restored","cause":{"error":"y","code":"not_found","reason":{"type":"not_found","kind":"commit"}}}}`))
	f.Add([]byte(`{"error":"x","code":"teapot","reason":{"type":"dirty","bytes":-1}}`))
	f.Add([]byte(`{"reason":null}`))
	f.Add([]byte(`{"error":"x","code":"permission_denied","reason":{"type":"permission","need":"owner","have":"bogus","namespace":"a"}}`))
	f.Add([]byte(`{"error":"x","code":"permission_denied","reason":{"type":"permission","op":"gc","need":"admin","read_only":true}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Error
		if json.Unmarshal(data, &e) != nil {
			return
		}
		re := &RemoteError{Message: e.Error, Code: e.Code, Reason: e.Reason}
		if s := Sentinel(e.Code); s != nil && !errors.Is(re, s) {
			t.Fatalf("%s: not %v", data, s)
		}
		typed := e.Reason.Err()
		if typed == nil {
			return
		}
		_ = typed.Error()
		for _, c := range codes {
			if errors.Is(typed, c.err) && !errors.Is(re, c.err) {
				t.Fatalf("%s: the client's error is not %v, as its type is", data, c.err)
			}
		}
		r1 := reasonFor(typed)
		r2 := reasonFor(r1.Err())
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("%s: reason %+v, then %+v", data, r1, r2)
		}
	})
}
