package zfs_test

import (
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/backendtest/pgcrash"
)

// TestPostgresCrashConsistency: PostgreSQL on one subdot and plain files on
// another, committed by a real Node while PostgreSQL writes; after a hard
// reset PostgreSQL recovers by itself to exactly the committed prefix.
func TestPostgresCrashConsistency(t *testing.T) {
	b, _ := openBackend(t)
	pgcrash.Run(t, b)
}
