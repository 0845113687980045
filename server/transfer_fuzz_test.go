package server

import (
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
)

func FuzzTransferRequest(f *testing.F) {
	f.Add([]byte(`{"op":"push","dot":"app","remote":{"name":"b","url":"http://127.0.0.2:32607","api_key":"k"}}`))
	f.Add([]byte(`{"op":"clone","dot":"ns/app","branch":"dev","remote_dot":"x/y","remote":{"url":"https://h","api_key":"k","ca_cert":"-----"}}`))
	f.Add([]byte(`{"op":"pull","dot":"../x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req api.TransferRequest
		if decodeJSON(data, &req) != nil {
			return
		}
		local, remote, err := parseTransferRequest(req)
		if err != nil {
			return
		}
		if local.Validate() != nil || remote.Validate() != nil {
			t.Fatalf("accepted invalid names %v %v", local, remote)
		}
		if req.Op != "push" && req.Op != "pull" && req.Op != "clone" {
			t.Fatalf("accepted op %q", req.Op)
		}
	})
}
