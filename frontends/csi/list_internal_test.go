package csi

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FuzzPageToken feeds ListVolumes' paging any token and page size: it
// either refuses them (Aborted, InvalidArgument) or returns a page that
// is a run of the list, after the token, no longer than asked, whose
// next token leads on to the entry after it.
func FuzzPageToken(f *testing.F) {
	var recs []*volumeRecord
	for i := range 9 {
		recs = append(recs, &volumeRecord{Name: fmt.Sprintf("pvc-%d", i)})
	}
	sortRecs(recs)
	f.Add("", int32(0))
	f.Add(nameKey(recs[3].Name), int32(2))
	f.Add("invalid-token", int32(1))
	f.Add("00000000000000000000000000000000", int32(-1))
	f.Fuzz(func(t *testing.T, token string, max int32) {
		got, next, err := page(recs, max, token)
		if err != nil {
			if c := status.Code(err); c != codes.Aborted && c != codes.InvalidArgument {
				t.Fatalf("token %q max %d: %v", token, max, err)
			}
			return
		}
		if max < 0 || (max > 0 && len(got) > int(max)) {
			t.Fatalf("max %d gave %d entries", max, len(got))
		}
		for i, r := range got {
			if token != "" && nameKey(r.Name) <= token {
				t.Fatalf("entry %s is not after token %q", nameKey(r.Name), token)
			}
			if i > 0 && nameKey(got[i-1].Name) >= nameKey(r.Name) {
				t.Fatal("a page out of order")
			}
		}
		if next != "" {
			if len(got) == 0 || next != nameKey(got[len(got)-1].Name) {
				t.Fatalf("next token %q is not the last entry's key", next)
			}
			if rest, _, err := page(recs, 0, next); err != nil || len(rest) == 0 {
				t.Fatalf("the next token %q leads nowhere: %v", next, err)
			}
		}
	})
}
