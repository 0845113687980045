package client

import (
	"encoding/json"
	"testing"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// FuzzObjectsPage: whatever a peer answers for an object list page,
// checkPage accepts only pages within the limits, continuing the list.
func FuzzObjectsPage(f *testing.F) {
	f.Add([]byte(`{"total":2,"offset":0,"digest":"x","ids":["ab","cd"]}`), 0)
	f.Add([]byte(`{"total":5,"offset":2,"digest":"x","ids":["ab"]}`), 2)
	f.Add([]byte(`{"total":99999999,"offset":0,"ids":[]}`), 0)
	f.Add([]byte(`{"total":1,"offset":0,"ids":["../x"]}`), 0)
	f.Fuzz(func(t *testing.T, data []byte, have int) {
		var page api.ObjectsPage
		if json.Unmarshal(data, &page) != nil {
			return
		}
		if have < 0 || have > 64 {
			return
		}
		sofar := dotmesh.ObjectList{IDs: make([]dotmesh.ObjectID, have)}
		if checkPage(&page, &sofar) != nil {
			return
		}
		if page.Total > dotmesh.MaxObjectList || len(page.IDs) > dotmesh.MaxObjectBatch || page.Offset != have || page.Offset+len(page.IDs) > page.Total {
			t.Fatalf("accepted %+v after %d", page, have)
		}
		if len(page.IDs) == 0 && page.Offset < page.Total {
			t.Fatal("accepted an empty page short of the total (endless paging)")
		}
		for _, id := range page.IDs {
			if dotmesh.ValidateObjectID(id) != nil {
				t.Fatalf("accepted id %q", id)
			}
		}
	})
}
