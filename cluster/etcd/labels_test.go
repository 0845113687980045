package etcdstore_test

import (
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/cluster/etcd/etcdtest"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Labels live in etcd with the dot: what one node of a cluster sets,
// another reads and selects by.
func TestLabelsSharedByClusterNodes(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 1)
	ctx := ctxTimeout(t, time.Minute)
	n1, n2 := clusterNode(t, ctx, c, "/test/labels/", "n1"), clusterNode(t, ctx, c, "/test/labels/", "n2")
	db := dotmesh.DotName{Namespace: "admin", Name: "db"}
	web := dotmesh.DotName{Namespace: "admin", Name: "web"}
	for _, d := range []dotmesh.DotName{db, web} {
		if _, err := n1.CreateDot(ctx, d, dotmesh.CreateDotOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n1.Label(ctx, db, dotmesh.LabelChange{Set: map[string]string{"app": "shop", "tier": "db"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.Label(ctx, web, dotmesh.LabelChange{Set: map[string]string{"app": "shop"}}); err != nil {
		t.Fatal(err)
	}
	d, err := n2.Dot(ctx, db)
	if err != nil || d.Labels["tier"] != "db" || d.Labels["app"] != "shop" {
		t.Fatalf("n2 reads db's labels as %v, %v; want app=shop, tier=db", d, err)
	}
	sel, err := dotmesh.ParseSelector("admin", []string{"app=shop", "tier!=db"})
	if err != nil {
		t.Fatal(err)
	}
	names, err := n1.SelectDots(ctx, sel)
	if err != nil || len(names) != 1 || names[0] != web {
		t.Fatalf("n1 selects %v, %v; want only web (labelled on n2)", names, err)
	}
	if _, err := n1.Label(ctx, web, dotmesh.LabelChange{Remove: []string{"app"}}); err != nil {
		t.Fatal(err)
	}
	if d, err := n2.Dot(ctx, web); err != nil || len(d.Labels) != 0 {
		t.Fatalf("n2 reads web's labels after n1 removed them as %v, %v; want none", d, err)
	}
}
