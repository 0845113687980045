// Command embed shows a Go program using dotmesh as a library, with no
// server: a Node on a temp directory with the files (dump) backend and the
// bbolt registry. It commits two subdots, branches, and resets.
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/dotmesh-io/dotmesh/backend/dump"
	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out *os.File) error {
	dir, err := os.MkdirTemp("", "dotmesh-embed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := bboltstore.Open(filepath.Join(dir, "registry.db"), bboltstore.Options{Logger: quiet})
	if err != nil {
		return err
	}
	backend, err := dump.Open(filepath.Join(dir, "dump"), dump.Options{Logger: quiet})
	if err != nil {
		store.Close()
		return err
	}
	node, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: store, Backends: []dotmesh.StorageBackend{backend}, Logger: quiet})
	if err != nil {
		backend.Close()
		store.Close()
		return err
	}
	defer node.Close()

	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	if _, err := node.CreateDot(ctx, app, dotmesh.CreateDotOptions{}); err != nil {
		return err
	}
	// write puts content into a subdot of the current branch.
	write := func(subdot, file, content string) error {
		p, err := node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: subdot})
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(p, file), []byte(content), 0o644)
	}
	read := func(subdot, file string) string {
		p, err := node.SubdotPath(ctx, dotmesh.VolumeName{Dot: app, Subdot: subdot})
		if err != nil {
			return "error: " + err.Error()
		}
		b, err := os.ReadFile(filepath.Join(p, file))
		if err != nil {
			return "(missing)"
		}
		return string(b)
	}

	if err := write("db", "rows", "alice\n"); err != nil {
		return err
	}
	if err := write("web", "config", "v1\n"); err != nil {
		return err
	}
	first, err := node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "first", Author: "example"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "committed %s: db=%q web=%q\n", first.ID[:8], read("db", "rows"), read("web", "config"))

	if err := write("db", "rows", "alice\nbob\n"); err != nil {
		return err
	}
	if err := write("web", "config", "v2\n"); err != nil {
		return err
	}
	second, err := node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "second", Author: "example", Metadata: map[string]string{"ci": "1"}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "committed %s: db=%q web=%q\n", second.ID[:8], read("db", "rows"), read("web", "config"))

	if _, err := node.Checkout(ctx, app, "feature", dotmesh.CheckoutOptions{Create: true}); err != nil {
		return err
	}
	if err := write("web", "config", "feature\n"); err != nil {
		return err
	}
	if _, err := node.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "on feature", Author: "example"}); err != nil {
		return err
	}
	fmt.Fprintf(out, "feature branch: web=%q\n", read("web", "config"))

	if _, err := node.Checkout(ctx, app, dotmesh.DefaultBranch, dotmesh.CheckoutOptions{}); err != nil {
		return err
	}
	if _, err := node.Reset(ctx, app, "", "HEAD^", dotmesh.ResetOptions{Hard: true}); err != nil {
		return err
	}
	fmt.Fprintf(out, "master after reset --hard HEAD^: db=%q web=%q\n", read("db", "rows"), read("web", "config"))

	log, err := node.Log(ctx, app, "feature", 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "feature still has %d commits:", len(log))
	for _, c := range log {
		fmt.Fprintf(out, " %s(%s)", c.ID[:8], c.Message)
	}
	fmt.Fprintln(out)
	return nil
}
