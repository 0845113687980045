package client_test

import (
	"context"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// cutClient cuts every commit stream it sends after limit bytes, keeping
// the client's have/want methods.
type cutClient struct {
	*client.Client
	limit int64
}

func (c cutClient) SendCommit(ctx context.Context, dot dotmesh.DotName, branch string, cm dotmesh.Commit, base *dotmesh.CommitID, format string, data io.Reader) error {
	return c.Client.SendCommit(ctx, dot, branch, cm, base, format, io.LimitReader(data, c.limit))
}

// TestHaveWantOverHTTP: a push cut off inside a commit resumes over HTTP
// without resending what arrived, and a pull of a dot whose data the
// receiver mostly has already moves only the missing chunks.
func TestHaveWantOverHTTP(t *testing.T) {
	ctx := context.Background()
	a, b := servertest.Start(t), servertest.Start(t)
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	_, err := a.Node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	noErr(t, err)
	p, err := a.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	noErr(t, err)
	const size = 16 << 20
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	must(t, os.WriteFile(filepath.Join(p, "big"), data, 0o644))
	_, err = a.Node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", Author: "t"})
	noErr(t, err)

	cb, err := client.New(b.URL, "", b.Key)
	noErr(t, err)
	_, err = a.Node.Push(ctx, app, "", cutClient{cb, size / 2}, dotmesh.TransferOptions{})
	if err == nil {
		t.Fatal("a push cut in half succeeded")
	}
	if _, err := b.Node.Dot(ctx, app); err == nil {
		t.Fatal("the cut push made the dot visible")
	}
	res, err := a.Node.Push(ctx, app, "", cb, dotmesh.TransferOptions{})
	noErr(t, err)
	t.Logf("resumed push over HTTP: %d bytes of a %d-byte commit, %d objects held", res.Bytes, size, res.ObjectsHeld)
	if res.ObjectsHeld == 0 || res.Bytes > size*6/10 {
		t.Fatalf("resumed push resent what arrived: %+v", res)
	}
	got, err := b.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app})
	noErr(t, err)
	if g, _ := os.ReadFile(filepath.Join(got, "big")); string(g) != string(data) {
		t.Fatal("b's copy differs")
	}

	// b pulls another dot of a that shares 99% of the data: the client
	// is the sending side's Transport here (paged object list).
	other := dotmesh.DotName{Namespace: "admin", Name: "other"}
	_, err = a.Node.CreateDot(ctx, other, dotmesh.CreateDotOptions{})
	noErr(t, err)
	po, err := a.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: other})
	noErr(t, err)
	copy(data[size/3:], make([]byte, size/100))
	must(t, os.WriteFile(filepath.Join(po, "big"), data, 0o644))
	_, err = a.Node.Commit(ctx, other, "", dotmesh.CommitOptions{Message: "other", Author: "t"})
	noErr(t, err)
	ca, err := client.New(a.URL, "", a.Key)
	noErr(t, err)
	res, err = b.Node.Clone(ctx, other, "", ca, dotmesh.TransferOptions{})
	noErr(t, err)
	t.Logf("clone of a dot sharing 99%%: %d bytes, %d objects held", res.Bytes, res.ObjectsHeld)
	if res.ObjectsHeld == 0 || res.Bytes > size/100+2<<20 {
		t.Fatalf("clone sent chunks b had: %+v", res)
	}
}
