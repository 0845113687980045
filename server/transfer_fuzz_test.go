package server

import (
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func FuzzTransferRequest(f *testing.F) {
	f.Add([]byte(`{"op":"push","dot":"app","remote":{"name":"b","url":"http://127.0.0.2:32607","api_key":"k"}}`))
	f.Add([]byte(`{"op":"clone","dot":"ns/app","branch":"dev","remote_dot":"x/y","remote":{"url":"https://h","api_key":"k","ca_cert":"-----"}}`))
	f.Add([]byte(`{"op":"pull","dot":"../x"}`))
	f.Add([]byte(`{"op":"push","dot":"app","remote":{"url":"http://h","api_key":"k","connect_timeout_ms":-1,"idle_timeout_ms":86400001}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req api.TransferRequest
		if decodeJSON(data, &req) != nil {
			return
		}
		for _, p := range []dotmesh.Principal{{User: dotmesh.AdminUser, Admin: true}, {User: "alice"}} {
			checkTransferRequest(t, p, req)
		}
	})
}

// checkTransferRequest: what parseTransferRequest accepts for p is valid.
func checkTransferRequest(t *testing.T, p dotmesh.Principal, req api.TransferRequest) {
	t.Helper()
	local, remote, err := parseTransferRequest(p, req)
	if err != nil {
		return
	}
	if req.Op == "clone" && !p.Admin && (req.Dot == "" || req.Dot == req.RemoteDot) && local.Namespace != p.User {
		t.Fatalf("%s clones into %v", p.User, local)
	}
	if local.Validate() != nil || remote.Validate() != nil {
		t.Fatalf("accepted invalid names %v %v", local, remote)
	}
	if req.Op != "push" && req.Op != "pull" && req.Op != "clone" {
		t.Fatalf("accepted op %q", req.Op)
	}
	for _, ms := range []int64{req.Remote.ConnectTimeoutMS, req.Remote.IdleTimeoutMS} {
		if ms < 0 || ms > api.MaxTimeoutMS {
			t.Fatalf("accepted a timeout of %d ms", ms)
		}
	}
}

// FuzzHaveWantRequests: the have/want bodies from peers decode strictly,
// and a filter that validates can be read at every index without panic.
func FuzzHaveWantRequests(f *testing.F) {
	f.Add([]byte(`{"commit":"0123456789abcdef0123456789abcdef","format":"native:dump","ids":["ab","cd"]}`))
	f.Add([]byte(`{"format":"native:dump","filter":{"count":9,"digest":"` + strings.Repeat("a", 64) + `","have":"AAE="}}`))
	f.Add([]byte(`{"format":"native:dump","filter":{"count":3,"digest":"x","have":"/w=="}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var hr api.HaveRequest
		if decodeJSON(data, &hr) == nil {
			for _, id := range hr.IDs {
				_ = dotmesh.ValidateObjectID(id)
			}
		}
		var fr api.FetchRequest
		if decodeJSON(data, &fr) != nil || fr.Filter == nil || fr.Filter.Validate() != nil {
			return
		}
		set := 0
		for i := 0; i < fr.Filter.Count; i++ {
			if fr.Filter.Held(i) {
				set++
			}
		}
		if set > fr.Filter.Count {
			t.Fatal("more bits than objects")
		}
	})
}
