//go:build dmlight

package cli

import "testing"

// fullBuildOnly leaves out, with -tags dmlight, a test of a part that the
// light build has not: its test node (compiled with the same tag) has no
// text diff nor neutral transfer (dotmesh/light.go), and this package no
// bucket client (bucketopen_light.go). The light dm hands those commands
// to dm-node, whose build the plain `go test` checks; cmd/dm's
// TestLightHandsOverToNode checks the hand-over. The light run says which
// tests it left out and why (go test -v).
func fullBuildOnly(t *testing.T, part string) {
	t.Helper()
	t.Skipf("needs %s, which the light build (dmlight) leaves to dm-node", part)
}
