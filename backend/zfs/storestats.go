package zfs

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

var _ dotmesh.StoreStatter = (*Backend)(nil)

// StoreStats implements dotmesh.StoreStatter from one recursive `zfs get`
// of the backend's root dataset: Objects counts the commits' snapshots,
// StoredBytes is the root's `used` (every working state, snapshot and
// record, with the blocks snapshots and clones share counted once), and
// LogicalBytes sums each commit snapshot's `referenced`, what it would take
// alone. zfs-fuse has no `logicalreferenced`, so both are after
// compression: their ratio is what sharing blocks between commits and
// branches saves. The backend's own short-lived snapshots (dm-…) are not
// commits and are left out.
func (b *Backend) StoreStats(ctx context.Context) (dotmesh.StoreStats, error) {
	var st dotmesh.StoreStats
	rows, err := b.z.get(ctx, true, []string{"used", "referenced"}, b.root)
	if err != nil {
		return st, fmt.Errorf("store stats of %s: %w", b.root, err)
	}
	return storeStats(b.root, rows)
}

// storeStats sums the rows of `zfs get -Hp -r used,referenced ROOT`.
func storeStats(root dataset, rows []propRow) (dotmesh.StoreStats, error) {
	var st dotmesh.StoreStats
	for _, r := range rows {
		_, snap, isSnap := strings.Cut(r.name, "@")
		commit := isSnap && !strings.HasPrefix(snap, tempSnapPrefix)
		if !(r.name == root.name && r.prop == "used") && !(commit && r.prop == "referenced") {
			continue
		}
		v, err := strconv.ParseInt(r.value, 10, 64)
		if err != nil || v < 0 {
			return st, fmt.Errorf("zfs get: %s of %s is %q, not a number of bytes", r.prop, r.name, r.value)
		}
		if r.name == root.name {
			st.StoredBytes = v
			continue
		}
		st.Objects++
		st.LogicalBytes += v
	}
	return st, nil
}
