package server

import (
	"errors"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzReleaseRequest: a release request is accepted only with valid
// branch and node names, and refused with a one-line client error.
func FuzzReleaseRequest(f *testing.F) {
	f.Add("master", []byte(`{"to":"node2"}`))
	f.Add("dev", []byte(`{"to":""}`))
	f.Add("../x", []byte(`{"to":"n"}`))
	f.Add("master", []byte(`{"to":"../../etc"}`))
	f.Add("master", []byte(`{"to":"n","x":1}`))
	f.Add("master", []byte(`{"to":1}`))
	f.Fuzz(func(t *testing.T, branch string, data []byte) {
		var req api.ReleaseRequest
		if err := decodeJSON(data, &req); err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) {
				t.Fatalf("decode error %v is not ErrInvalidArgument", err)
			}
			return
		}
		err := parseRelease(branch, req)
		if err != nil {
			if !errors.Is(err, dotmesh.ErrInvalidArgument) && !errors.Is(err, dotmesh.ErrInvalidName) {
				t.Fatalf("parse error %v is not a client error", err)
			}
			return
		}
		if dotmesh.ValidateName("branch", branch) != nil || dotmesh.ValidateName("node id", req.To) != nil {
			t.Fatalf("accepted branch %q to %q", branch, req.To)
		}
	})
}
