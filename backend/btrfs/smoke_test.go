//go:build linux && cgo

package btrfs

import (
	"context"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	b := openShared(t)
	br := newBranch(dotmesh.NewDotID(), "master")
	must(t, b.CreateBranch(ctx, br, nil))
	if u := usage(t, b, br, nil); u.Dirty {
		t.Fatalf("fresh branch dirty: %+v", u)
	}
	p := subdot(t, b, br, dotmesh.DefaultSubdot)
	if u := usage(t, b, br, nil); u.Dirty {
		t.Fatalf("branch with empty subdot dirty: %+v", u)
	}
	writeFile(t, p+"/a", "one")
	if u := usage(t, b, br, nil); !u.Dirty {
		t.Fatalf("not dirty: %+v", u)
	}
	c1 := commit(t, b, br)
	if u := usage(t, b, br, &c1); u.Dirty {
		t.Fatalf("dirty after commit: %+v", u)
	}
	writeFile(t, p+"/a", "two")
	if u := usage(t, b, br, &c1); !u.Dirty {
		t.Fatalf("not dirty: %+v", u)
	}
	must(t, b.Rollback(ctx, br, c1))
	if got := readFile(t, p+"/a"); got != "one" {
		t.Fatalf("after rollback: %q", got)
	}
	if u := usage(t, b, br, &c1); u.Dirty {
		t.Fatalf("dirty after rollback: %+v", u)
	}
	ids, err := b.Commits(ctx, br)
	must(t, err)
	t.Logf("commits %v", ids)
}
