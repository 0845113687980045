package client_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/server/servertest"
)

// A commit's answer decodes (commitAnswer) to the commit the node holds,
// as encoding/json decodes it, plain or streamed, also with escapes,
// metadata and text beyond ASCII.
func TestCommitAnswer(t *testing.T) {
	n := servertest.Start(t)
	c := must(client.New(n.URL, "", n.Key, client.WithDirect()))
	ctx := context.Background()
	app := dotmesh.DotName{Namespace: "admin", Name: "app"}
	must(c.CreateDot(ctx, app, ""))
	streamed := dotmesh.WithProgress(ctx, func(dotmesh.Progress) {})
	for _, cc := range []struct {
		ctx context.Context
		msg string
		md  map[string]string
	}{
		{ctx, "plain", nil},
		{ctx, "quote \" back\\slash\nnewline\ttab é ☃ \u2028 <&>", map[string]string{"k": `v "q"`, "ci": "1"}},
		{streamed, "streamed ✓", map[string]string{"a": "b"}},
	} {
		cm, err := c.CommitWith(cc.ctx, app, api.CommitRequest{Message: cc.msg, Metadata: cc.md, AllowEmpty: true})
		if err != nil {
			t.Fatalf("commit %q: %v", cc.msg, err)
		}
		head := must(c.ResolveRef(ctx, app, "", "HEAD"))
		// The node's record as encoding/json reads it back.
		b := must(json.Marshal(head))
		var want dotmesh.Commit
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*cm, want) || cm.Message != cc.msg || !reflect.DeepEqual(cm.Metadata, cc.md) {
			t.Errorf("commit %q answered %+v; the node holds %+v", cc.msg, *cm, want)
		}
	}
}
