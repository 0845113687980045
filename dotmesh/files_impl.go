package dotmesh

import (
	"context"
	"fmt"
)

// CONTRACT STUB: replaced by the files stream (h-files). Never merged to main as is.

func (n *Node) listFiles(ctx context.Context, dot DotName, branch, ref, dir, after string, limit int) (*FilesPage, error) {
	return nil, fmt.Errorf("%w: listFiles", ErrNotSupported)
}

func (n *Node) readFile(ctx context.Context, dot DotName, branch, ref, path string, max int64) ([]byte, bool, error) {
	return nil, false, fmt.Errorf("%w: readFile", ErrNotSupported)
}

func (n *Node) fileChanges(ctx context.Context, dot DotName, branch, ref string, limit int) ([]FileChange, bool, error) {
	return nil, false, fmt.Errorf("%w: fileChanges", ErrNotSupported)
}
