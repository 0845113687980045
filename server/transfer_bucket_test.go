package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/backend/dump"
	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/repo"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/syncbuf"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// TestBucketTransfer: the node pushes to and clones from a bucket remote
// the request describes, logs and audits none of its secrets, and lets
// only an admin use a file:// bucket (its own filesystem); a refused
// push changes nothing.
func TestBucketTransfer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	node, _ := servertest.OpenNode(t, dir)
	key, _, err := server.EnsureAdminKey(ctx, node, dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	srv := httptest.NewServer(server.New(node, server.Options{
		Logger:         slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:        "test",
		BackendAliases: map[string]string{dump.UserName: dump.Name},
	}))
	t.Cleanup(func() {
		srv.Close()
		node.Close()
	})
	admin := newClient(t, srv.URL, api.AdminUser, key)
	ak, err := admin.AddUser(ctx, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	alice := newClient(t, srv.URL, "alice", ak.Secret)

	const password, secret = "pw-f9a1c3e7", "secret-4b2d8e6a"
	bdir := t.TempDir()
	r, err := bucketremote.Init(ctx, bucketremote.Config{URL: "file://" + bdir, Password: []byte(password)}, repo.InitOptions{Password: []byte(password), KDF: repo.KDFParams{Name: repo.KDFScrypt, N: 1 << 10, R: 8, P: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	listing := func() []string {
		st, err := bucket.OpenDir(bdir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		if err := st.List(ctx, "", func(o bucket.ObjectInfo) error { names = append(names, o.Name); return nil }); err != nil {
			t.Fatal(err)
		}
		return names
	}
	before := listing()

	app := dotmesh.DotName{Name: "app"}
	for _, c := range []*client.Client{admin, alice} {
		if _, err := c.CreateDot(ctx, app, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CommitWith(ctx, app, api.CommitRequest{Message: "first", AllowEmpty: true}); err != nil {
			t.Fatal(err)
		}
	}
	fileRemote := api.TransferRemote{Name: "usb", Bucket: &api.TransferBucket{URL: "file://" + bdir, Password: password, SecretKey: secret}}

	// alice may push her own dot to a node, but not have the node write
	// into its filesystem.
	_, err = alice.Transfer(ctx, api.TransferRequest{Op: "push", Dot: "app", Remote: fileRemote}, nil)
	var pe *dotmesh.PermissionError
	if !errors.As(err, &pe) || pe.Need != dotmesh.RoleAdmin {
		t.Fatalf("alice pushes to a file:// bucket: %v; want a PermissionError needing admin", err)
	}
	if got := listing(); strings.Join(got, " ") != strings.Join(before, " ") {
		t.Fatalf("a refused push changed the bucket: %q, was %q", got, before)
	}

	res, err := admin.Transfer(ctx, api.TransferRequest{Op: "push", Dot: "app", Remote: fileRemote}, nil)
	if err != nil || res.Commits != 1 {
		t.Fatalf("admin pushes to the bucket: %+v %v", res, err)
	}
	res, err = admin.Transfer(ctx, api.TransferRequest{Op: "clone", Dot: "copy", RemoteDot: "app", Remote: fileRemote}, nil)
	if err != nil || res.Commits != 1 {
		t.Fatalf("admin clones from the bucket: %+v %v", res, err)
	}

	// A wrong password is the peer's error, at once.
	bad := fileRemote
	bad.Bucket = &api.TransferBucket{URL: "file://" + bdir, Password: "nope"}
	_, err = admin.Transfer(ctx, api.TransferRequest{Op: "push", Dot: "app", Remote: bad}, nil)
	var re *api.RemoteError
	if !errors.As(err, &re) || !re.Peer || !errors.Is(err, dotmesh.ErrUnauthorized) {
		t.Fatalf("push with a wrong password: %#v; want the peer's unauthorized error", err)
	}

	page, err := admin.Audit(ctx, dotmesh.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range page.Records {
		j, _ := json.Marshal(rec)
		if b := string(j); strings.Contains(b, password) || strings.Contains(b, secret) {
			t.Fatalf("the audit holds a secret: %s", j)
		}
	}
	if l := logs.String(); strings.Contains(l, password) || strings.Contains(l, secret) || !strings.Contains(l, "transfer") {
		t.Fatalf("the node's log holds a secret, or no transfer:\n%s", l)
	}
	if _, err := os.Stat(bdir); err != nil {
		t.Fatal(err)
	}
}
