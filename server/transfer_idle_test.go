package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// TestFramedStreamStalled: a sender that stops in the middle of a framed
// commit stream with its connection open is cut after the receiver's
// idle time; nothing is stored and the dot's receive is free again, so the
// whole stream then goes through. A slow sender that keeps sending is not
// cut.
func TestFramedStreamStalled(t *testing.T) {
	const idle = 600 * time.Millisecond
	ctx := context.Background()
	src := servertest.Start(t)
	dst := servertest.StartWith(t, server.Options{TransferIdle: idle})
	web := dotmesh.DotName{Namespace: "admin", Name: "web"}
	if _, err := src.Node.CreateDot(ctx, web, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	p, err := src.Node.SubdotPath(ctx, dotmesh.VolumeName{Dot: web})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "f"), randomBytes(t, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := src.Node.Commit(ctx, web, "", dotmesh.CommitOptions{Message: "one", Author: "t"})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := client.New(src.URL, "admin", src.Key)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := client.New(dst.URL, "admin", dst.Key)
	if err != nil {
		t.Fatal(err)
	}
	const format = "native:dump"
	rc, err := sc.FetchCommit(ctx, web, c.ID, nil, format)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(stream) < 1<<20 {
		t.Fatalf("the commit's stream: %d bytes, %v", len(stream), err)
	}

	t.Run("stalled", func(t *testing.T) {
		// By hand, as a sender that stops with its connection open: half
		// the stream, then nothing until the test ends.
		var hdr bytes.Buffer
		if err := api.WriteCommitHeader(&hdr, *c); err != nil {
			t.Fatal(err)
		}
		hold := make(chan struct{})
		defer close(hold)
		body := io.MultiReader(&hdr, bytes.NewReader(stream[:len(stream)/2]), blockUntil(hold))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, dst.URL+"/v1/dots/admin/web/transfer/commits?branch=master&format="+format, body)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(api.AdminUser, dst.Key)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("after %s: %v", took, err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(answer), "the sender sent nothing for 600ms") {
			t.Fatalf("answer %d %s", resp.StatusCode, answer)
		}
		if took < idle*7/8 || took > idle+5*time.Second {
			t.Fatalf("the stalled stream was cut after %s (idle %s)", took, idle)
		}
		t.Logf("cut after %s: %d %s", took, resp.StatusCode, bytes.TrimSpace(answer))
		if _, err := dst.Node.Log(ctx, web, "master", 0); !errors.Is(err, dotmesh.ErrNotFound) {
			t.Fatalf("the receiver has the dot after a cut stream: %v", err)
		}
	})
	t.Run("slow but steady", func(t *testing.T) {
		// Each piece comes within the idle time, the whole well after it.
		r := &slowReader{data: stream, piece: len(stream)/6 + 1, pause: idle / 3}
		start := time.Now()
		if err := dc.SendCommit(ctx, web, "master", *c, nil, format, r); err != nil {
			t.Fatalf("a slow but steady stream (%s): %v", time.Since(start), err)
		}
		if took := time.Since(start); took < idle*3/2 {
			t.Fatalf("the slow stream took only %s", took)
		}
		if _, err := dc.Finish(ctx, web, "master", dotmesh.FinishRequest{Head: c.ID}); err != nil {
			t.Fatal(err)
		}
		log, err := dst.Node.Log(ctx, web, "master", 0)
		if err != nil || len(log) != 1 || log[0].ID != c.ID {
			t.Fatalf("after the whole stream: %v, %v", log, err)
		}
	})
}

// slowReader hands out data a piece at a time with a pause before each.
type slowReader struct {
	data  []byte
	piece int
	pause time.Duration
	left  int // of the current piece
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.left == 0 {
		time.Sleep(r.pause)
		r.left = r.piece
	}
	n := copy(p[:min(len(p), r.left)], r.data)
	r.data, r.left = r.data[n:], r.left-n
	return n, nil
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// blockUntil is a reader that gives nothing until done is closed.
type blockUntil chan struct{}

func (b blockUntil) Read([]byte) (int, error) {
	<-b
	return 0, io.ErrUnexpectedEOF
}
