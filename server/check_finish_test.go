package server_test

import (
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// TestCheckFinishParam: a commit that asks for the Finish check
// (api.CheckFinishParam) without a direct stream and a Finish to check,
// or with a value other than 1 or 0, is refused before its body is read.
func TestCheckFinishParam(t *testing.T) {
	n := servertest.Start(t)
	path := "/v1/dots/admin/app/transfer/commits?branch=master&format=native:zfs&" + api.CheckFinishParam + "="
	for _, v := range []string{"1", "yes"} {
		status, b := call(t, n, basic(api.AdminUser, n.Key), "POST", path+v, "not a commit header")
		if status != 400 || !strings.Contains(string(b), api.CheckFinishParam) {
			t.Errorf("%s=%s: status %d, %s; want 400 naming the parameter", api.CheckFinishParam, v, status, b)
		}
	}
}
