package dotmesh

import "testing"

// FuzzRebuildDot feeds arbitrary kept records to the rebuild: an error or
// registry writes for the dot it names, never a panic.
func FuzzRebuildDot(f *testing.F) {
	id := DotID("0123456789abcdef0123456789abcdef")
	f.Add(`{"id":"`+string(id)+`","namespace":"admin","name":"app","backend":"dump","current":"master"}`,
		`{"dot":"`+string(id)+`","name":"master","head":"`+string(id)+`"}`,
		`{"id":"`+string(id)+`","dot":"`+string(id)+`","branch":"master","message":"m","extra":[1]}`)
	f.Add("", "{}", "null")
	f.Fuzz(func(t *testing.T, dot, branch, commit string) {
		recs := map[string][]byte{recordDot: []byte(dot), recordBranchPrefix + "master": []byte(branch), recordCommitPrefix + string(id): []byte(commit)}
		stored := map[BranchRef]bool{{Dot: id, Branch: "master"}: true}
		var st RebuildStats
		r, err := rebuildDot(id, recs, "dump", stored, func(*Commit) (bool, error) { return true, nil }, &st)
		if err != nil || r == nil {
			return
		}
		if r.ID != id || r.DotName().Validate() != nil {
			t.Fatalf("rebuilt dot %q named %v", r.ID, r.DotName())
		}
		for _, op := range r.ops {
			if op.Key == "" || op.Delete {
				t.Fatalf("bad op %+v", op)
			}
		}
	})
}
