package dotmesh_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// txnLog is a store that remembers the keys each transaction and put
// wrote.
type txnLog struct {
	dotmesh.ClusterStore
	mu     sync.Mutex
	writes [][]string
}

func (l *txnLog) Txn(ctx context.Context, conds []dotmesh.Condition, ops []dotmesh.Op) (int64, error) {
	rev, err := l.ClusterStore.Txn(ctx, conds, ops)
	if err == nil {
		var keys []string
		for _, op := range ops {
			keys = append(keys, op.Key)
		}
		l.mu.Lock()
		l.writes = append(l.writes, keys)
		l.mu.Unlock()
	}
	return rev, err
}

func (l *txnLog) Put(ctx context.Context, key string, value []byte) (int64, error) {
	rev, err := l.ClusterStore.Put(ctx, key, value)
	if err == nil {
		l.mu.Lock()
		l.writes = append(l.writes, []string{key})
		l.mu.Unlock()
	}
	return rev, err
}

// openLogged opens the node on a registry that logs its writes.
func (e *env) openLogged() *txnLog {
	var log *txnLog
	e.open(func(s dotmesh.ClusterStore) dotmesh.ClusterStore {
		log = &txnLog{ClusterStore: s}
		return log
	})
	return log
}

// TestCommitWritesItsAuditInItsTransaction: an audit record given with
// WithAudit is written in the commit's own registry transaction, completed
// with the branch and commit; a commit refused for want of changes writes
// none and leaves it to the caller.
func TestCommitWritesItsAuditInItsTransaction(t *testing.T) {
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir()}
	log := e.openLogged()
	_, err := e.node.CreateDot(ctx, app, dotmesh.CreateDotOptions{})
	require.NoError(t, err)
	e.write("app.db", "f", "one")

	actx, pending := dotmesh.WithAudit(ctx, dotmesh.AuditRecord{User: "admin", Action: "commit", Dot: "admin/app", Detail: "d"})
	log.mu.Lock()
	log.writes = nil
	log.mu.Unlock()
	c, err := e.node.Commit(actx, app, "", dotmesh.CommitOptions{Message: "m"})
	require.NoError(t, err)
	rec, written := pending.Written()
	require.True(t, written, "the commit did not write its audit record")
	require.Equal(t, c.Branch, rec.Branch)
	require.Equal(t, string(c.ID), rec.Commit)

	log.mu.Lock()
	var audited [][]string
	for _, keys := range log.writes {
		for _, k := range keys {
			if strings.HasPrefix(k, "audit/") {
				audited = append(audited, keys)
			}
		}
	}
	log.mu.Unlock()
	require.Len(t, audited, 1, "one write holds the audit record")
	require.Contains(t, strings.Join(audited[0], " "), string(c.ID), "the audit record is not in the commit's transaction: %v", audited[0])

	recs, _, err := e.node.Audit().List(ctx, dotmesh.AuditQuery{})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	got := recs[0]
	require.Equal(t, rec, got)
	require.Equal(t, "admin/app", got.Dot)
	require.Equal(t, "d", got.Detail)
	require.False(t, got.Time.IsZero())

	// Nothing to commit: no record, and the caller is told so.
	actx, pending = dotmesh.WithAudit(ctx, dotmesh.AuditRecord{User: "admin", Action: "commit", Dot: "admin/app"})
	_, err = e.node.Commit(actx, app, "", dotmesh.CommitOptions{Message: "m"})
	var nt *dotmesh.NothingToCommitError
	require.True(t, errors.As(err, &nt), "%v", err)
	_, written = pending.Written()
	require.False(t, written)
	recs, _, err = e.node.Audit().List(ctx, dotmesh.AuditQuery{})
	require.NoError(t, err)
	require.Len(t, recs, 1)
}
