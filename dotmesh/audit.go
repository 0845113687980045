package dotmesh

import (
	"context"
	"fmt"
	"sync"
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
	r, err := n.completeAudit(r)
	if err != nil {
		return err
	}
	_, err = n.store.Put(ctx, auditKey(r.ID), encode(r))
	return err
}

// completeAudit checks r and fills its id, time and node.
func (n *Node) completeAudit(r AuditRecord) (AuditRecord, error) {
	if r.Action == "" {
		return r, fmt.Errorf("%w: an audit record needs an action", ErrInvalidArgument)
	}
	if r.ID == "" {
		r.ID = n.newAuditID()
	} else if err := ValidateName("audit record id", r.ID); err != nil {
		return r, err
	}
	if r.Dot != "" { // stored as ns/name, whichever form it came in
		d, err := ParseDotName(r.Dot)
		if err != nil {
			return r, err
		}
		r.Dot = auditDot(d)
	}
	if r.Time.IsZero() {
		r.Time = n.now().UTC()
	}
	if r.Node == "" {
		r.Node = n.place.nodeID()
	}
	return r, nil
}

// PendingAudit is an audit record that a caller (the API server) asks the
// engine to write in the same registry transaction as the change it
// records, so that the change and its record are one atomic write: see
// WithAudit.
type PendingAudit struct {
	mu      sync.Mutex
	rec     AuditRecord
	written bool
}

type pendingAuditKey struct{}

// WithAudit returns a context that carries r to the verb called with it.
// A verb that supports it (Commit, a transfer's Finish that moves an
// existing branch) completes r with what it changed (the
// branch and commit) and writes it in the transaction of the change;
// Written then reports true. A call that fails or changes nothing writes
// nothing: the caller records what it records of those itself.
func WithAudit(ctx context.Context, r AuditRecord) (context.Context, *PendingAudit) {
	p := &PendingAudit{rec: r}
	return context.WithValue(ctx, pendingAuditKey{}, p), p
}

// Written reports whether the engine wrote the record, and the record as
// written.
func (p *PendingAudit) Written() (AuditRecord, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec, p.written
}

// auditOps returns the registry write of the audit record ctx carries
// (WithAudit), completed by fill, for the transaction of the change it
// records; done marks it written once that transaction succeeded. No ops
// when ctx carries none, or its record was written already. A record
// that does not check out is left to the caller (logged).
func (n *Node) auditOps(ctx context.Context, fill func(*AuditRecord)) (ops []Op, done func()) {
	p, _ := ctx.Value(pendingAuditKey{}).(*PendingAudit)
	if p == nil {
		return nil, func() {}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.written {
		return nil, func() {}
	}
	r := p.rec
	fill(&r)
	r, err := n.completeAudit(r)
	if err != nil {
		n.log.WarnContext(ctx, "audit record not written with its change", "action", r.Action, "err", err)
		return nil, func() {}
	}
	return []Op{PutOp(auditKey(r.ID), encode(r))}, func() {
		p.mu.Lock()
		p.rec, p.written = r, true
		p.mu.Unlock()
	}
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
