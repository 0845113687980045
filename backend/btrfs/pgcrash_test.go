//go:build linux && cgo

package btrfs

import (
	"testing"

	"github.com/dotmesh-io/dotmesh/backend/backendtest/pgcrash"
)

// TestPostgresCrashConsistency: a commit taken while PostgreSQL writes is
// a crash image it recovers from, atomic with a second subdot.
func TestPostgresCrashConsistency(t *testing.T) {
	pgcrash.Run(t, openShared(t))
}
