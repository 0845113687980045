package txn

import (
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestValidate(t *testing.T) {
	long := strings.Repeat("k", 100)
	for _, tc := range []struct {
		name   string
		conds  []dotmesh.Condition
		ops    []dotmesh.Op
		maxKey int
		ok     bool
	}{
		{"fine", []dotmesh.Condition{{Key: "a", Revision: 3}}, []dotmesh.Op{{Key: "a"}, {Key: "b", Delete: true}}, 0, true},
		{"empty txn", nil, nil, 10, true},
		{"condition without key", []dotmesh.Condition{{Revision: 1}}, nil, 0, false},
		{"negative revision", []dotmesh.Condition{{Key: "a", Revision: -1}}, nil, 0, false},
		{"op without key", nil, []dotmesh.Op{{Key: ""}}, 0, false},
		{"two ops on one key", nil, []dotmesh.Op{{Key: "a"}, {Key: "a", Delete: true}}, 0, false},
		{"key over the limit", nil, []dotmesh.Op{{Key: long}}, 99, false},
		{"key at the limit", nil, []dotmesh.Op{{Key: long}}, 100, true},
		{"no limit", nil, []dotmesh.Op{{Key: long}}, 0, true},
	} {
		err := Validate(tc.conds, tc.ops, tc.maxKey)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, dotmesh.ErrInvalidArgument)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
