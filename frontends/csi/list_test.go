package csi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// listAll pages through ListVolumes max entries at a time; before each
// next page it calls between with the page just read.
func listAll(t *testing.T, c clients, max int32, between func([]*csi.ListVolumesResponse_Entry)) []string {
	t.Helper()
	var ids []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("ListVolumes never ends")
		}
		resp, err := c.ListVolumes(context.Background(), &csi.ListVolumesRequest{MaxEntries: max, StartingToken: token})
		if err != nil {
			t.Fatalf("ListVolumes(max %d, token %q): %v", max, token, err)
		}
		if max > 0 && len(resp.Entries) > int(max) {
			t.Fatalf("a page of %d entries; max was %d", len(resp.Entries), max)
		}
		for _, e := range resp.Entries {
			ids = append(ids, e.Volume.VolumeId)
		}
		if resp.NextToken == "" {
			return ids
		}
		if len(resp.Entries) != int(max) {
			t.Fatalf("a short page (%d of %d) with a next token", len(resp.Entries), max)
		}
		if between != nil {
			between(resp.Entries)
		}
		token = resp.NextToken
	}
}

func TestListVolumesPaging(t *testing.T) {
	socket, _ := startPlugin(t)
	c := dial(t, socket)
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 7 {
		v, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: fmt.Sprintf("pvc-page-%d", i), VolumeCapabilities: rwo,
			CapacityRange: &csi.CapacityRange{RequiredBytes: int64(i+1) << 20}})
		if err != nil {
			t.Fatal(err)
		}
		want[v.Volume.VolumeId] = true
	}
	all := listAll(t, c, 0, nil)
	if len(all) != 7 {
		t.Fatalf("one page lists %d volumes; want 7: %v", len(all), all)
	}
	for _, max := range []int32{1, 3, 7, 8} {
		got := listAll(t, c, max, nil)
		if fmt.Sprint(got) != fmt.Sprint(all) {
			t.Fatalf("pages of %d list %v; one page %v", max, got, all)
		}
	}

	// Deleting the last volume of a page, and adding one, between pages:
	// no volume is listed twice and none that stays is missed.
	deleted := ""
	got := listAll(t, c, 3, func(page []*csi.ListVolumesResponse_Entry) {
		if deleted != "" {
			return
		}
		deleted = page[len(page)-1].Volume.VolumeId
		if _, err := c.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: deleted}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-page-late", VolumeCapabilities: rwo}); err != nil {
			t.Fatal(err)
		}
	})
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s listed twice: %v", id, got)
		}
		seen[id] = true
	}
	for id := range want {
		if !seen[id] && id != deleted {
			t.Fatalf("%s missing from the pages: %v", id, got)
		}
	}

	for _, tok := range []string{"invalid-token", "7", "0123456789abcdef0123456789ABCDEF", "0123456789abcdef"} {
		if _, err := c.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: tok}); status.Code(err) != codes.Aborted {
			t.Errorf("token %q: %v; want Aborted", tok, err)
		}
	}
	if _, err := c.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: -1}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("max_entries -1: %v; want InvalidArgument", err)
	}
}

func TestGetVolumeAndHealth(t *testing.T) {
	socket, node := startPlugin(t)
	c := dial(t, socket)
	ctx := context.Background()
	v, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-get", VolumeCapabilities: rwo,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 5 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	id := v.Volume.VolumeId
	g, err := c.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: id})
	if err != nil {
		t.Fatal(err)
	}
	// The files backend bounds nothing: the size is recorded as asked.
	if g.Volume.VolumeId != id || g.Volume.CapacityBytes != 5<<20 || g.Status == nil {
		t.Fatalf("ControllerGetVolume: %v", g)
	}
	clone, err := c.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-get-clone", VolumeCapabilities: rwo,
		VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}})
	if err != nil {
		t.Fatal(err)
	}
	g, err = c.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: clone.Volume.VolumeId})
	if err != nil || g.Volume.GetContentSource().GetVolume().GetVolumeId() != id {
		t.Fatalf("the clone's content source: %v %v", g, err)
	}
	if _, err := c.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Fatalf("a missing volume: %v; want NotFound", err)
	}

	h, err := c.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: id})
	if err != nil || h.VolumeHealth.VolumeId != id || len(h.VolumeHealth.HealthStatuses) != 0 {
		t.Fatalf("a healthy volume: %v %v", h, err)
	}
	// A static volume naming a branch the dot does not have.
	if _, err := node.CreateDot(ctx, dotmesh.DotName{Namespace: "admin", Name: "static"}, dotmesh.CreateDotOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err = c.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: "static@gone"})
	if err != nil || len(h.VolumeHealth.HealthStatuses) != 1 ||
		h.VolumeHealth.HealthStatuses[0].Status != csi.VolumeHealthErrorType_INACCESSIBLE || h.VolumeHealth.HealthStatuses[0].Reason != "BranchMissing" {
		t.Fatalf("a volume on a missing branch: %v %v", h, err)
	}
	if _, err := c.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Fatalf("health of a missing volume: %v; want NotFound", err)
	}
	// Every volume the plugin made is healthy: the list of abnormal ones
	// is empty, page by page.
	l, err := c.ControllerListVolumeHealth(ctx, &csi.ControllerListVolumeHealthRequest{MaxEntries: 1})
	if err != nil || len(l.Entries) != 0 || l.NextToken == "" {
		t.Fatalf("ControllerListVolumeHealth: %v %v", l, err)
	}
	if _, err := c.ControllerListVolumeHealth(ctx, &csi.ControllerListVolumeHealthRequest{StartingToken: "bad"}); status.Code(err) != codes.Aborted {
		t.Fatalf("a bad health token: %v; want Aborted", err)
	}
}
