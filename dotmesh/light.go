//go:build dmlight

package dotmesh

import (
	"context"
	"fmt"
	"io"
)

// The light dm (cmd/dm built with the dmlight tag) uses this package for
// its vocabulary (names, refs, errors, the API's types) and runs no node.
// It leaves out the engine's neutral transfers (package transport/neutral,
// with BLAKE3 and its CPU feature probe, whose package init alone cost
// 0.77 ms of a 3.5-4.5 ms dm start) and text diffs (go-udiff); these
// stand-ins keep the engine compiling and say why if ever reached.

// errLight is the answer of an engine part the light build leaves out.
func errLight(what string) error {
	return fmt.Errorf("%s is not in the light dm (built with dmlight); dm-node runs it: %w", what, ErrNotSupported)
}

func (n *Node) sendNeutral(context.Context, *Dot, StorageBackend, *Commit, *Commit, bool, io.Writer) error {
	return errLight("a neutral transfer")
}

func (n *Node) receiveNeutral(context.Context, *transferTarget, Commit, *Commit, io.Reader) (map[string]string, error) {
	return nil, errLight("a neutral transfer")
}

func unifiedPatch(string, []byte, []byte, bool, bool, int, int) (filePatch, error) {
	return filePatch{}, errLight("a text diff")
}
