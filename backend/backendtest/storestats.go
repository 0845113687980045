package backendtest

import "github.com/dotmesh-io/dotmesh/dotmesh"

// storeStatsTests check dotmesh.StoreStatter where a backend has it: a
// commit's file bytes count in LogicalBytes each time a commit holds
// them, while the store keeps them once.
var storeStatsTests = []backendTest{
	{"CountsSharedDataOnce", func(f *fixture) {
		ss, ok := f.be.(dotmesh.StoreStatter)
		if !ok {
			f.t.Logf("backend %s is no StoreStatter: nothing to check", f.be.Name())
			return
		}
		stats := func(what string) dotmesh.StoreStats {
			f.t.Helper()
			st, err := ss.StoreStats(f.ctx)
			f.fatalIf(err, "StoreStats %s", what)
			if st.Objects < 0 || st.StoredBytes < 0 || st.LogicalBytes < 0 {
				f.t.Fatalf("StoreStats %s: %+v, negative", what, st)
			}
			return st
		}
		const size = 1 << 20
		empty := stats("of an empty backend")
		br := f.newBranch()
		f.write(br, Tree{"db": Dir(0o755), "db/random": RandomFile(0o644, size, 11)})
		f.commit(br)
		one := stats("after a commit of 1 MiB")
		if one.LogicalBytes-empty.LogicalBytes < size || one.StoredBytes-empty.StoredBytes < size*9/10 || one.Objects <= empty.Objects {
			f.t.Errorf("a commit of 1 MiB of random bytes: %+v, before %+v", one, empty)
		}
		f.commit(br) // the same tree again
		two := stats("after a second commit of the same tree")
		if two.LogicalBytes-one.LogicalBytes < size || two.Objects < one.Objects {
			f.t.Errorf("the same tree committed again counts its bytes again: %+v, before %+v", two, one)
		}
		if grew := two.StoredBytes - one.StoredBytes; grew > 256<<10 {
			f.t.Errorf("the same tree committed again took %d more bytes in the store; it shares them (%+v, before %+v)", grew, two, one)
		}
	}},
}
