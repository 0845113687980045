package bucketremote_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/bucket/repo"
	_ "github.com/dotmesh-io/dotmesh/bucket/s3" // the s3:// kind
	"github.com/dotmesh-io/dotmesh/bucket/s3test"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/transport/bucketremote"
)

// TestMain stops the SeaweedFS server TestS3 and TestMaint share.
func TestMain(m *testing.M) {
	code := m.Run()
	s3test.CloseShared()
	os.Exit(code)
}

// The transfers against a real S3 server (SeaweedFS on loopback), the
// package's shared one, a prefix each (unique to this run: the server
// outlives it under -count).
func TestS3(t *testing.T) {
	srv := s3test.Shared(t)
	run := mtRandHex(8)
	prefix := func(t *testing.T) string { return strings.ReplaceAll(t.Name(), "/", "-") + "-" + run }

	t.Run("PushClone", func(t *testing.T) {
		testPushClone(t, initBucket(t, srv.Open(t, prefix(t)), ""))
	})

	t.Run("DialWrongPassword", func(t *testing.T) {
		ctx := context.Background()
		cfg := bucketremote.Config{URL: srv.URL(prefix(t)), Store: srv.Config(), Password: password}
		_, err := bucketremote.Dial(ctx, cfg)
		require.ErrorIs(t, err, dotmesh.ErrNotFound)
		r, err := bucketremote.Init(ctx, cfg, repo.InitOptions{KDF: cheapKDF})
		require.NoError(t, err)
		require.NoError(t, r.Close(ctx))
		cfg.Password = []byte("wrong")
		start := time.Now()
		_, err = bucketremote.Dial(ctx, cfg)
		require.ErrorIs(t, err, repo.ErrWrongPassword)
		require.Less(t, time.Since(start), 5*time.Second)
	})

	// Two pushes of one branch at once through the server: one wins.
	t.Run("ConcurrentSameBranch", func(t *testing.T) {
		b := initBucket(t, srv.Open(t, prefix(t)), "")
		a, c := sharedDot(t, b)
		a.write(app, "f", randomBytes(40, 1<<20))
		a.commit(app, "a")
		c.write(app, "f", randomBytes(41, 1<<20))
		c.commit(app, "c")
		racePushes(t, b, a, c)
	})

	// The S3 gateway killed in the middle of a push and started again: the
	// push fails or rides it out on retries; run again, it lands whole.
	t.Run("ServerKilledMidPush", func(t *testing.T) {
		ctx := context.Background()
		cfg := bucketremote.Config{URL: srv.URL(prefix(t)), Store: srv.Config(), Password: password, Repo: repo.Options{}}
		r, err := bucketremote.Init(ctx, cfg, repo.InitOptions{KDF: cheapKDF})
		require.NoError(t, err)
		require.NoError(t, r.Close(ctx))

		a := newNode(t)
		a.create(app)
		data := randomBytes(42, 64<<20)
		a.write(app, "big", data)
		a.commit(app, "one")
		r, err = bucketremote.Dial(ctx, cfg)
		require.NoError(t, err)
		killed := false
		_, err = a.node.Push(ctx, app, "", r, dotmesh.TransferOptions{Progress: func(p dotmesh.Progress) {
			if p.Bytes > 16<<20 && !killed {
				// The stream stalls here while uploads in flight fail
				// and retry against a server that is away.
				killed = true
				srv.Kill()
				time.Sleep(time.Second)
				srv.Restart(t)
			}
		}})
		require.True(t, killed)
		t.Logf("push with the server killed midway: %v", err)
		require.NoError(t, r.Close(ctx))

		r, err = bucketremote.Dial(ctx, cfg)
		require.NoError(t, err)
		defer r.Close(ctx)
		_, err = a.node.Push(ctx, app, "", r, dotmesh.TransferOptions{})
		require.NoError(t, err)
		require.Equal(t, data, cloneFile(t, r, app, "big"))
	})

	// An identity that may only read: a push fails with a clear error
	// and changes nothing; a clone works.
	t.Run("ReadOnlyCredentials", func(t *testing.T) {
		ctx := context.Background()
		b := initBucket(t, srv.Open(t, prefix(t)), "")
		a := newNode(t)
		a.create(app)
		a.write(app, "f", []byte("one"))
		a.commit(app, "one")
		_, err := a.node.Push(ctx, app, "", b.remote(), dotmesh.TransferOptions{})
		require.NoError(t, err)
		a.write(app, "f", []byte("two"))
		a.commit(app, "two")

		ro, err := bucketremote.Dial(ctx, bucketremote.Config{URL: srv.URL(prefix(t)), Store: srv.ReadOnlyConfig(), Password: password})
		require.NoError(t, err)
		defer ro.Close(ctx)
		_, err = a.node.Push(ctx, app, "", ro, dotmesh.TransferOptions{})
		require.Error(t, err)
		t.Logf("push with read-only credentials: %v", err)
		st, err := b.remote().State(ctx, app, "master", dotmesh.StateOptions{})
		require.NoError(t, err)
		require.Len(t, st.History, 1, "nothing changed")

		c := newNode(t)
		_, err = c.node.Clone(ctx, app, "", ro, dotmesh.TransferOptions{})
		require.NoError(t, err)
		require.Len(t, c.log(app, "master"), 1)
	})
}
