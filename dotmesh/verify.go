package dotmesh

import (
	"context"
	"fmt"
	"sort"
)

// Verifier is an optional capability, richer than Checker: it re-reads
// every stored object and says which commits use each damaged one.
type Verifier interface {
	Verify(ctx context.Context) (*VerifyReport, error)
}

// VerifyReport is what a backend's Verify found.
type VerifyReport struct {
	Objects int64           `json:"objects"` // objects read
	Bytes   int64           `json:"bytes"`   // stored bytes read
	Damaged []DamagedObject `json:"damaged"`
	// Problems are other findings (unreadable manifests, missing objects).
	Problems []string `json:"problems"`
}

// DamagedObject is one object whose content does not match its hash.
type DamagedObject struct {
	Object string      `json:"object"`
	Error  string      `json:"error"`
	Refs   []CommitRef `json:"-"`       // commits using it, from the backend
	Users  []string    `json:"commits"` // the same, for people: ns/dot@branch id
}

// VerifyResult is Node.Verify's answer: per backend.
type VerifyResult struct {
	Backends map[string]*VerifyReport `json:"backends"`
}

// OK reports whether nothing was found.
func (r *VerifyResult) OK() bool {
	for _, b := range r.Backends {
		if len(b.Damaged) > 0 || len(b.Problems) > 0 {
			return false
		}
	}
	return true
}

// Verify re-reads every stored object of the backends (of dot's backend
// when dot is not nil; objects are shared by all dots of a backend, so
// the check is backend-wide) and names, for each damaged object, the
// commits that use it. Damage is a result, not an error.
func (n *Node) Verify(ctx context.Context, dot *DotName) (_ *VerifyResult, err error) {
	done := n.begin(OpVerify)
	defer func() { done(OpEvent{Err: err}) }()
	names := n.BackendNames()
	if dot != nil {
		d, err := n.Dot(ctx, *dot)
		if err != nil {
			return nil, err
		}
		names = []string{d.Backend}
	}
	res := &VerifyResult{Backends: map[string]*VerifyReport{}}
	labels, err := n.commitLabels(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		be, ok := n.backends[name]
		if !ok {
			continue
		}
		var rep *VerifyReport
		switch v := be.(type) {
		case Verifier:
			if rep, err = v.Verify(ctx); err != nil {
				return nil, fmt.Errorf("verifying backend %s: %w", name, err)
			}
		case Checker:
			rep = &VerifyReport{Damaged: []DamagedObject{}, Problems: []string{}}
			if err := v.Check(ctx); err != nil {
				rep.Problems = append(rep.Problems, err.Error())
			}
		default:
			if dot != nil {
				return nil, fmt.Errorf("%w: backend %s cannot verify its data", ErrNotSupported, name)
			}
			continue
		}
		for i := range rep.Damaged {
			dm := &rep.Damaged[i]
			for _, r := range dm.Refs {
				l, ok := labels[r.ID]
				if !ok {
					l = "unregistered commit " + r.String()
				}
				dm.Users = append(dm.Users, l)
			}
			sort.Strings(dm.Users)
			if dm.Users == nil {
				dm.Users = []string{}
			}
		}
		res.Backends[name] = rep
	}
	return res, nil
}

// commitLabels maps every registered commit to "ns/dot@branch id".
func (n *Node) commitLabels(ctx context.Context) (map[CommitID]string, error) {
	dots, err := n.reg.dots(ctx)
	if err != nil {
		return nil, err
	}
	out := map[CommitID]string{}
	for _, d := range dots {
		cs, err := n.reg.commits(ctx, d.ID)
		if err != nil {
			return nil, err
		}
		for id, c := range cs {
			out[id] = fmt.Sprintf("%s@%s %s", d.DotName(), c.Branch, id)
		}
	}
	return out, nil
}
