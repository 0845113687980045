//go:build !dmlight

package cli

import "testing"

// fullBuildOnly: see fullbuild_light_test.go; the full build has every
// part.
func fullBuildOnly(*testing.T, string) {}
