package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Names are checked here before anything is sent, so that bad input fails
// fast with a message about the input rather than about the server. The
// server checks them again.

// notAPath catches the inputs people type when they think of dots as
// directories, whose generic parse error ("namespace name is empty")
// would confuse.
func notAPath(s string) error {
	switch {
	case strings.HasPrefix(s, "/"):
		return fmt.Errorf("%w: %q is an absolute path, not a dot name; names are [namespace/]dot[@branch][.subdot] made of letters, digits, '_' and '-'", dotmesh.ErrInvalidName, s)
	case strings.Contains(s, ".."):
		return fmt.Errorf("%w: %q contains \"..\"; names are [namespace/]dot[@branch][.subdot] made of letters, digits, '_' and '-'", dotmesh.ErrInvalidName, s)
	}
	return nil
}

// parseDotName parses "[namespace/]dot".
func parseDotName(s string) (dotmesh.DotName, error) {
	if err := notAPath(s); err != nil {
		return dotmesh.DotName{}, err
	}
	return dotmesh.ParseDotName(s)
}

// parseVolumeName parses "[namespace/]dot[@branch][.subdot]".
func parseVolumeName(s string) (dotmesh.VolumeName, error) {
	if err := notAPath(s); err != nil {
		return dotmesh.VolumeName{}, err
	}
	return dotmesh.ParseVolumeName(s)
}

// parseNewDotName parses the name of a dot about to be made: no part
// starts with '-' or '_' (dotmesh.ValidateNewName).
func parseNewDotName(s string) (dotmesh.DotName, error) {
	d, err := parseDotName(s)
	if err != nil {
		return dotmesh.DotName{}, err
	}
	return d, d.ValidateNew()
}

func validateBranch(b string) error { return dotmesh.ValidateName("branch", b) }

// validateNewBranch checks the name of a branch about to be made.
func validateNewBranch(b string) error { return dotmesh.ValidateNewName("branch", b) }

func validateRef(r string) error {
	_, err := dotmesh.ParseRef(r)
	return err
}

// ParseMetadata parses -d key=value flags. Keys follow the name rules; a
// key given twice is an error rather than a silent overwrite.
func ParseMetadata(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	md := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%w: metadata %q is not key=value", dotmesh.ErrInvalidArgument, kv)
		}
		if err := dotmesh.ValidateName("metadata key", k); err != nil {
			return nil, err
		}
		if _, dup := md[k]; dup {
			return nil, fmt.Errorf("%w: metadata key %q given twice", dotmesh.ErrInvalidArgument, k)
		}
		md[k] = v
	}
	return md, nil
}

// sortedKeys returns a map's keys in order, for stable output.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
