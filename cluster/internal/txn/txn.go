// Package txn checks the arguments of dotmesh.ClusterStore.Txn the same
// way for every store, so that a bad transaction gets the same error from
// bbolt and etcd and changes nothing.
package txn

import (
	"fmt"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Validate checks conds and ops: no empty key, no negative revision, no
// two ops on one key (their order would be ambiguous; etcd refuses them
// too, but with a message that names no key), and, when maxKey > 0, no
// op key longer than maxKey bytes (the store's own limit).
func Validate(conds []dotmesh.Condition, ops []dotmesh.Op, maxKey int) error {
	for _, c := range conds {
		if c.Key == "" {
			return fmt.Errorf("%w: txn condition with an empty key", dotmesh.ErrInvalidArgument)
		}
		if c.Revision < 0 {
			return fmt.Errorf("%w: txn condition on %q with negative revision %d", dotmesh.ErrInvalidArgument, c.Key, c.Revision)
		}
	}
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if op.Key == "" {
			return fmt.Errorf("%w: txn op with an empty key", dotmesh.ErrInvalidArgument)
		}
		if maxKey > 0 && len(op.Key) > maxKey {
			return fmt.Errorf("%w: key %q... is %d bytes long; the limit is %d", dotmesh.ErrInvalidArgument, op.Key[:64], len(op.Key), maxKey)
		}
		if seen[op.Key] {
			return fmt.Errorf("%w: txn has two ops on key %q", dotmesh.ErrInvalidArgument, op.Key)
		}
		seen[op.Key] = true
	}
	return nil
}
