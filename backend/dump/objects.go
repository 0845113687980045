package dump

import (
	"context"
	"fmt"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Chunk have/want (dotmesh.ObjectNegotiator): a stream's objects are
// named by their BLAKE3 hashes, so a sender can leave out what the
// receiver holds, whichever commit brought it there: an earlier commit of
// any dot, or an interrupted receive of this very commit (see pins.go).

var _ dotmesh.ObjectNegotiator = (*Backend)(nil)

func objectID(h cas.Hash) dotmesh.ObjectID { return dotmesh.ObjectID(h.String()) }

func parseObjectID(id dotmesh.ObjectID) (cas.Hash, error) {
	h, err := cas.ParseHash(string(id))
	if err != nil || len(id) != 2*cas.HashSize {
		return h, fmt.Errorf("%w: object id %.80q is not a BLAKE3-256 hash in hex", dotmesh.ErrInvalidArgument, id)
	}
	return h, nil
}

// StreamObjects implements dotmesh.ObjectNegotiator.
func (b *Backend) StreamObjects(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef) ([]dotmesh.ObjectID, error) {
	defer b.useStore()()
	p, err := b.planStream(target, base)
	if err != nil {
		return nil, err
	}
	ids := make([]dotmesh.ObjectID, len(p.todo))
	for i, h := range p.todo {
		ids[i] = objectID(h)
	}
	return ids, nil
}

// HaveObjects implements dotmesh.ObjectNegotiator: the objects held are
// pinned for target, so that garbage collection keeps them until target's
// stream, which leaves them out, has arrived.
func (b *Backend) HaveObjects(ctx context.Context, target dotmesh.CommitRef, ids []dotmesh.ObjectID) ([]bool, error) {
	hs := make([]cas.Hash, len(ids))
	for i, id := range ids {
		h, err := parseObjectID(id)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	defer b.useStore()()
	have := make([]bool, len(hs))
	var held []cas.Hash
	for i, h := range hs {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		ok, err := b.store.Has(h)
		if err != nil {
			return nil, err
		}
		if ok {
			have[i] = true
			held = append(held, h)
		}
	}
	if err := b.addPins(target, held); err != nil {
		return nil, err
	}
	return have, nil
}
