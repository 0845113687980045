package bucketremote_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
	"github.com/dotmesh-io/dotmesh/transport/neutral"
)

// FuzzSendDelta: a bucket takes any delta against a commit it holds and
// stores a tree that streams back whole, or refuses it with ErrCorrupt.
func FuzzSendDelta(f *testing.F) {
	ctx := context.Background()
	st, err := bucket.OpenDir(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	rp, err := repo.Init(ctx, st, repo.InitOptions{Password: password, KDF: cheapKDF}, repo.Options{})
	if err != nil {
		f.Fatal(err)
	}
	r := bucketremote.New(rp, bucketremote.Config{})
	defer r.Close(ctx)

	// The base: a directory with a file, a file, a symlink.
	var whole bytes.Buffer
	w, _ := neutral.NewWriter(&whole)
	t0 := time.Unix(1, 0)
	for _, e := range []neutral.Entry{
		{Kind: neutral.KindDir, Path: "d", Mode: 0o755, MTime: t0},
		{Kind: neutral.KindFile, Path: "d/f", Mode: 0o644, MTime: t0, Size: 3},
		{Kind: neutral.KindFile, Path: "g", Mode: 0o644, MTime: t0, Size: 3},
		{Kind: neutral.KindSymlink, Path: "l", Mode: 0o777, MTime: t0, Target: "g"},
	} {
		if err := w.Add(e, strings.NewReader("abc"[:e.Size])); err != nil {
			f.Fatal(err)
		}
	}
	w.Close()
	base := dotmesh.Commit{ID: dotmesh.NewCommitID(), Author: "x", Time: time.Now()}
	if err := r.SendCommit(ctx, app, "master", base, nil, dotmesh.FormatNeutral, bytes.NewReader(whole.Bytes())); err != nil {
		f.Fatal(err)
	}
	b := string(base.ID)
	f.Add(rawDelta(b))
	f.Add(rawDelta(b, rawRecord('r', "d", 0, ""), rawRecord('f', "e", 0o600, "new")))
	f.Add(rawDelta(b, rawRecord('f', "d", 0o644, "x"), rawRecord('d', "h", 0o755, ""), rawRecord('f', "h/i", 0o644, "y")))
	f.Add(rawDelta(b, rawRecord('r', "nothere", 0, "")))
	f.Add(whole.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		c := dotmesh.Commit{ID: dotmesh.NewCommitID(), Parent: base.ID, Author: "x", Time: time.Now()}
		err := r.SendCommit(ctx, app, "master", c, &base.ID, dotmesh.FormatNeutral, bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, dotmesh.ErrCorrupt) {
				t.Fatalf("a bad delta gave %v, not ErrCorrupt", err)
			}
			return
		}
		rc, err := r.FetchCommit(ctx, app, c.ID, nil, dotmesh.FormatNeutral)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if err := neutral.Scan(rc, func(neutral.Entry, io.Reader) error { return nil }); err != nil {
			t.Fatalf("the stored tree of an accepted delta does not stream back: %v", err)
		}
	})
}
