package client_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// finishCounter is a node client that counts separate Finish calls and
// can run before each SendCommit, or strip the finish that rides along.
type finishCounter struct {
	dotmesh.Transport
	finishes atomic.Int32
	before   func()
	noAlong  bool
}

func (f *finishCounter) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, c dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	if f.before != nil {
		f.before()
	}
	if f.noAlong { // as a node that predates api.FinishHeader
		ctx = dotmesh.WithFinishAlong(ctx, nil)
	}
	return f.Transport.SendCommit(ctx, dot, branch, c, base, format, data)
}

func (f *finishCounter) Finish(ctx context.Context, dot dotmesh.DotName, branch string, req dotmesh.FinishRequest) (*dotmesh.FinishResult, error) {
	f.finishes.Add(1)
	return f.Transport.Finish(ctx, dot, branch, req)
}

// TestFinishAlongOverHTTP: a push's Finish rides on its last commit's
// request (api.FinishHeader), so no separate finish call is made, the
// receiver's branch moves and the audit records the push as before; a
// refusal of the finish comes back as Finish's own error with the commit
// kept; without the header the sender finishes separately.
func TestFinishAlongOverHTTP(t *testing.T) {
	ctx := context.Background()
	a, b := servertest.Start(t), servertest.Start(t)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	_, err := a.Node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	noErr(t, err)
	p, err := a.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	noErr(t, err)
	commit := func(msg string) dotmesh.CommitID {
		t.Helper()
		must(t, os.WriteFile(filepath.Join(p, "f"), []byte(strings.Repeat(msg, 1000)), 0o644))
		c, err := a.Node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: msg, Author: "t"})
		noErr(t, err)
		return c.ID
	}
	cb, err := client.New(b.URL, "", b.Key)
	noErr(t, err)
	head := func() dotmesh.CommitID {
		t.Helper()
		st, err := b.Node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true})
		noErr(t, err)
		if st.Branch == nil {
			return ""
		}
		return st.Branch.Head
	}

	// A new dot, then an increment: no separate Finish either time.
	for _, msg := range []string{"one", "two"} {
		id := commit(msg)
		fc := &finishCounter{Transport: cb}
		res, err := a.Node.Push(ctx, app, "", fc, dotmesh.TransferOptions{})
		noErr(t, err)
		if res.Commits != 1 || fc.finishes.Load() != 0 || head() != id {
			t.Fatalf("push of %s: %+v, %d separate finishes, b's head %s", msg, res, fc.finishes.Load(), head())
		}
	}
	page, err := cb.Audit(ctx, dotmesh.AuditQuery{Dot: &app})
	noErr(t, err)
	pushes := 0
	for _, r := range page.Records {
		if r.Action == "push" && r.Commit != "" {
			pushes++
		}
	}
	if pushes != 2 {
		t.Fatalf("audit: %d push records with a commit; want 2: %+v", pushes, page.Records)
	}

	// b's branch moves between the sender's look and its finish: the
	// finish's refusal comes back as such, and the commit stays staged.
	id := commit("three")
	old := head()
	fc := &finishCounter{Transport: cb, before: func() {
		bp, err := b.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
		noErr(t, err)
		must(t, os.WriteFile(filepath.Join(bp, "g"), []byte("b's own"), 0o644))
		_, err = b.Node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "b's own", Author: "t"})
		noErr(t, err)
	}}
	_, err = a.Node.Push(ctx, app, "", fc, dotmesh.TransferOptions{})
	if !errors.Is(err, dotmesh.ErrConflict) || strings.Contains(err.Error(), "transferring commit") || fc.finishes.Load() != 0 {
		t.Fatalf("push refused at its finish: %v (%d separate finishes)", err, fc.finishes.Load())
	}
	if h := head(); h == id || h == old {
		t.Fatalf("b's head is %s after a refused finish (old %s, pushed %s)", h, old, id)
	}
	st, err := b.Node.TransferPeer().State(ctx, app, "master", dotmesh.StateOptions{SkipUsage: true})
	noErr(t, err)
	if !containsID(st.Have, id) {
		t.Fatalf("the commit of a refused finish is not kept on b: %v", st.Have)
	}

	// A peer that takes no finish along: the sender calls Finish.
	c := servertest.Start(t)
	cc, err := client.New(c.URL, "", c.Key)
	noErr(t, err)
	fc = &finishCounter{Transport: cc, noAlong: true}
	_, err = a.Node.Push(ctx, app, "", fc, dotmesh.TransferOptions{})
	noErr(t, err)
	if fc.finishes.Load() != 1 {
		t.Fatalf("%d separate finishes without the header; want 1", fc.finishes.Load())
	}
}

func containsID(ids []dotmesh.CommitID, id dotmesh.CommitID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
