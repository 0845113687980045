package dotmesh

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// The consistency a commit achieved is recorded in its Info under
// InfoConsistency, one of:
//
//	crash-consistent        an atomic snapshot of the file system (zfs,
//	                        btrfs): what a power cut would leave, which a
//	                        database recovers from by replaying its log
//	application-consistent  such a snapshot taken while a quiesce hook
//	                        held the application at a clean point;
//	                        InfoConsistencyHook names the hook
//	logical                 database sources dumped by their engines'
//	                        consistent reads (dump backend);
//	                        InfoConsistencyInstant is the earliest
//	                        source's snapshot instant, and
//	                        InfoConsistencySpread how far apart they were
//	file-by-file            a plain file tree copied one file after
//	                        another (dump backend): each file as it was
//	                        when read, consistent only if nothing wrote
//	                        meanwhile
//
// A backend whose commits are atomic snapshots says so in the Info it
// returns (InfoConsistency: ConsistencyCrash); the Node fills in the
// rest: a backend that says nothing is taken at its word for nothing.
const (
	InfoConsistency        = "consistency"
	InfoConsistencyHook    = "consistency.hook"
	InfoConsistencyInstant = "consistency.instant"
	InfoConsistencySpread  = "consistency.spread_ms"

	ConsistencyCrash       = "crash-consistent"
	ConsistencyApplication = "application-consistent"
	ConsistencyLogical     = "logical"
	ConsistencyFileByFile  = "file-by-file"
)

// Info keys of database sources (dump backend): source.<subdot>.snapshot_time
// is the instant of the source's consistent read (RFC 3339), and
// InfoSourcesSpread the spread of those instants in one commit.
const (
	infoSourcePrefix  = "source."
	infoSnapshotTime  = ".snapshot_time"
	InfoSourcesSpread = "sources.snapshot_spread_ms"
)

// recordConsistency sets info's consistency keys from what the backend
// reported and the quiesce hook that held across the snapshot ("" for
// none). info may be nil.
func recordConsistency(info CommitInfo, quiesced string) CommitInfo {
	if info == nil {
		info = CommitInfo{}
	}
	var instants []time.Time
	for k, v := range info {
		if !strings.HasPrefix(k, infoSourcePrefix) || !strings.HasSuffix(k, infoSnapshotTime) {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			instants = append(instants, t)
		}
	}
	switch {
	case info[InfoConsistency] == ConsistencyCrash && quiesced != "":
		info[InfoConsistency] = ConsistencyApplication
		info[InfoConsistencyHook] = quiesced
	case info[InfoConsistency] != "":
	case len(instants) > 0:
		info[InfoConsistency] = ConsistencyLogical
		info[InfoConsistencyInstant] = slices.MinFunc(instants, time.Time.Compare).UTC().Format(time.RFC3339Nano)
		if s, ok := info[InfoSourcesSpread]; ok {
			info[InfoConsistencySpread] = s
		} else {
			info[InfoConsistencySpread] = SnapshotSpread(instants)
		}
	default:
		info[InfoConsistency] = ConsistencyFileByFile
	}
	return info
}

// SnapshotSpread is how far apart instants lie, in milliseconds with
// three decimals (InfoSourcesSpread, InfoConsistencySpread).
func SnapshotSpread(instants []time.Time) string {
	if len(instants) == 0 {
		return "0.000"
	}
	spread := slices.MaxFunc(instants, time.Time.Compare).Sub(slices.MinFunc(instants, time.Time.Compare))
	return strconv.FormatFloat(float64(spread.Microseconds())/1000, 'f', 3, 64)
}

// Consistency returns the consistency recorded for c, "" for commits made
// before it was recorded.
func (c *Commit) Consistency() string { return c.Info[InfoConsistency] }
