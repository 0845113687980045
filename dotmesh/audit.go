package dotmesh

import (
	"context"
	"fmt"
)

// Audit paging limits.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// newAuditID returns an id that sorts by time: zero-padded unix
// nanoseconds, then random hex so that records of one instant (on two
// nodes) do not collide.
func (n *Node) newAuditID() string {
	return fmt.Sprintf("%020d-%s", n.now().UnixNano(), randomHex(4))
}

// appendAudit is Audit.Append.
func (n *Node) appendAudit(ctx context.Context, r AuditRecord) error {
	if r.Action == "" {
		return fmt.Errorf("%w: an audit record needs an action", ErrInvalidArgument)
	}
	if r.ID == "" {
		r.ID = n.newAuditID()
	} else if err := ValidateName("audit record id", r.ID); err != nil {
		return err
	}
	if r.Dot != "" { // stored as ns/name, whichever form it came in
		d, err := ParseDotName(r.Dot)
		if err != nil {
			return err
		}
		r.Dot = auditDot(d)
	}
	if r.Time.IsZero() {
		r.Time = n.now().UTC()
	}
	if r.Node == "" {
		r.Node = n.place.nodeID()
	}
	_, err := n.store.Put(ctx, auditKey(r.ID), encode(r))
	return err
}

// listAudit is Audit.List. The store lists in key order only, so the
// records are read oldest first and walked backwards.
func (n *Node) listAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, string, error) {
	limit := q.Limit
	switch {
	case limit < 0:
		return nil, "", fmt.Errorf("%w: audit limit %d is negative", ErrInvalidArgument, limit)
	case limit == 0:
		limit = defaultAuditLimit
	case limit > maxAuditLimit:
		limit = maxAuditLimit
	}
	dot := ""
	if q.Dot != nil {
		d := *q.Dot
		if d.Namespace == "" {
			d.Namespace = DefaultNamespace
		}
		if err := d.Validate(); err != nil {
			return nil, "", err
		}
		dot = auditDot(d)
	}
	recs, _, err := listRecords[AuditRecord](ctx, n.store, auditPrefix)
	if err != nil {
		return nil, "", err
	}
	var out []AuditRecord
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if q.Before != "" && r.ID >= q.Before || dot != "" && r.Dot != dot {
			continue
		}
		if len(out) == limit {
			return out, out[limit-1].ID, nil
		}
		out = append(out, *r)
	}
	return out, "", nil
}

// auditDot is how a record names its dot: always ns/name.
func auditDot(d DotName) string { return d.Namespace + "/" + d.Name }
