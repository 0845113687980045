package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// Wiring is what dm needs from the code that runs nodes (package daemon),
// passed in by cmd/dm, the composition root, so that this frontend only
// talks: it parses, prints and calls the API client, and imports no
// daemon, server or store.
type Wiring struct {
	// Serve runs a node in the foreground until ctx ends (`dm serve`).
	Serve func(ctx context.Context, cfg node.Config) error
	// RebuildRegistry rebuilds the registry of a stopped node from its
	// backends (`dm registry rebuild`).
	RebuildRegistry func(ctx context.Context, cfg node.Config) (node.RebuildResult, error)

	// The supervision of a background node (`dm cluster init/join/stop`).

	// MakeDataDir creates a node's data directory.
	MakeDataDir func(dataDir string) error
	// RememberedListen returns where the node in dataDir last listened
	// and whether with --insecure; "" when none is remembered.
	RememberedListen func(dataDir string) (addr string, insecure bool, err error)
	// NodeRunning reports the PID of the node running in dataDir.
	NodeRunning func(dataDir string) (pid int, running bool, err error)
	// StartNode starts a node in the background and waits until
	// spec.Ready answers.
	StartNode func(ctx context.Context, spec node.StartSpec) (pid int, err error)
	// StopNode stops the node in dataDir, if one runs.
	StopNode func(dataDir string, timeout time.Duration) (node.Stopped, error)

	// StoreEncrypted reports whether the node's files store in dataDir
	// is encrypted at rest; CheckStorePassword whether password opens it.
	StoreEncrypted     func(dataDir string) bool
	CheckStorePassword func(dataDir string, password []byte) error
	// StoreKeys changes (op) and lists the keys of the encrypted files
	// store of the stopped node in dataDir (`dm store key`).
	StoreKeys func(dataDir string, password []byte, op node.StoreKeyOp) (added string, keys []node.StoreKey, err error)

	// The parts of a client whose packages are heavy to start (their
	// package init runs in every dm process that links them): a light dm
	// passes neither and hands the commands that need them over.

	// S3Credentials finds the credentials of an s3:// bucket remote
	// (bucket/s3.DefaultCredentials); passing it also says that the s3
	// kind of bucket is registered.
	S3Credentials func(profile string) (bucket.Config, error)
	// ManPages writes a man page for root and each of its commands into
	// dir; source is the pages' footer ("dotmesh VERSION").
	ManPages func(root *cobra.Command, source, dir string) error

	// HandOver, when set, runs the whole invocation (args without the
	// program name) in another program that has the functions above: a
	// light dm, which links no daemon, server, store or backend and so
	// starts fast, hands the commands that run nodes (nodeCommands) to
	// the dm that has them, and so the commands that need a part above
	// that is not passed (handedOver). It returns only when that program
	// could not be started.
	HandOver func(args []string) error
}

// nodeCommands are the commands that call the functions of Wiring that
// run nodes, by their path below dm (a prefix names its subcommands
// too). A Wiring with HandOver runs them elsewhere, before parsing
// anything, so that their input (a password prompt, stdin) goes to the
// program that acts on it.
var nodeCommands = []string{"serve", "cluster init", "cluster join", "cluster stop", "cluster reset", "registry rebuild", "store key"}

// manCommand is the command that calls Wiring.ManPages.
const manCommand = "docs man"

// handsOver reports whether args name one of nodeCommands in root, or
// manCommand when w has no ManPages.
func handsOver(root *cobra.Command, w Wiring, args []string) bool {
	c, _, err := root.Find(args)
	if err != nil || c == nil {
		return false
	}
	path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
	for _, n := range nodeCommands {
		if path == n || strings.HasPrefix(path, n+" ") {
			return true
		}
	}
	return path == manCommand && w.ManPages == nil
}

// handOver runs the whole invocation in the program that Wiring.HandOver
// starts, for a command that found only once its arguments were read
// that it needs what, a part this dm was built without (a bucket
// remote's client). Nothing has been changed or printed by then. Without
// HandOver it refuses in one line.
func (a *app) handOver(what string) error {
	if a.nodes.HandOver == nil || a.args == nil {
		return kinded(dotmesh.ErrNotSupported, fmt.Errorf("this dm is built without %s: its main package passes none in cli.Wiring (see cmd/dm)", what))
	}
	return a.nodes.HandOver(a.args) // returns only on failure
}

// errNotWired refuses a command that runs nodes in a dm built without the
// daemon wired in.
var errNotWired = errors.New("this dm cannot run nodes: its main package passes no cli.Wiring (see cmd/dm)")

// notWired returns errNotWired unless every one of set is true: whether
// the functions a command is about to call were passed in. Commands check
// their input first, so that bad input is reported as such.
func notWired(set ...bool) error {
	for _, ok := range set {
		if !ok {
			return errNotWired
		}
	}
	return nil
}
