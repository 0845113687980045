package dotmesh

import (
	"context"
	"fmt"
)

// Source binds a subdot of a branch to a live database, which commits dump
// and resets restore. What lists return never holds a password.
type Source struct {
	Subdot string `json:"subdot"`
	Kind   string `json:"kind"` // files, postgresql, mysql, redis, sqlite
	URL    string `json:"url"`  // redacted
	// State is "active", "garbage" (deactivated: kept, but marked for
	// collection) or "collected" (its database was dropped).
	State      string `json:"state"`
	InitSchema bool   `json:"init_schema,omitempty"` // an initial schema is stored
}

// SourceSpec describes a source to add.
type SourceSpec struct {
	Kind       string `json:"kind"`
	URL        string `json:"url"`
	InitSchema string `json:"init_schema,omitempty"` // SQL (or commands) run by activate
}

// Source lifecycle actions (Dysnomia's).
const (
	// SourceActivate creates the database if missing and loads the
	// initial schema; nothing happens when it exists.
	SourceActivate = "activate"
	// SourceDeactivate marks the source's database as garbage; the data
	// stays.
	SourceDeactivate = "deactivate"
	// SourceCollectGarbage drops the database if, and only if, marked.
	SourceCollectGarbage = "collect-garbage"
)

// SourceManager is an optional capability of backends that can dump live
// databases. The configuration is per branch and local to the node.
type SourceManager interface {
	AddSource(ctx context.Context, b BranchRef, subdot string, spec SourceSpec) error
	RemoveSource(ctx context.Context, b BranchRef, subdot string) error
	Sources(ctx context.Context, b BranchRef) ([]Source, error)
	SourceLifecycle(ctx context.Context, b BranchRef, subdot, action string) error
}

func (n *Node) sourceManager(ctx context.Context, v VolumeName) (SourceManager, *Dot, *Branch, error) {
	d, b, _, err := n.resolveBranch(ctx, v.Dot, v.Branch)
	if err != nil {
		return nil, nil, nil, err
	}
	be, err := n.backendOf(d)
	if err != nil {
		return nil, nil, nil, err
	}
	sm, ok := be.(SourceManager)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: dot %s lives on backend %s, which cannot bind subdots to databases (the dump backend can)", ErrNotSupported, d.DotName(), d.Backend)
	}
	return sm, d, b, nil
}

// withSource runs fn on subdot v's source manager and branch, under the
// dot's lock.
func (n *Node) withSource(ctx context.Context, v VolumeName, fn func(sm SourceManager, b *Branch, sub string) error) error {
	sub, err := sourceSubdot(v)
	if err != nil {
		return err
	}
	d, err := n.Dot(ctx, v.Dot)
	if err != nil {
		return err
	}
	defer n.lockDot(d.ID)()
	sm, _, b, err := n.sourceManager(ctx, v)
	if err != nil {
		return err
	}
	return fn(sm, b, sub)
}

func sourceSubdot(v VolumeName) (string, error) {
	s := v.SubdotOrDefault()
	if err := ValidateSubdot(s); err != nil {
		return "", err
	}
	if s == RootSubdot {
		return "", fmt.Errorf("%w: the root subdot %s is the whole tree and cannot be a database source", ErrInvalidName, RootSubdot)
	}
	return s, nil
}

// addSource is Sources.Add.
func (n *Node) addSource(ctx context.Context, v VolumeName, spec SourceSpec) error {
	return n.withSource(ctx, v, func(sm SourceManager, b *Branch, sub string) error {
		if err := sm.AddSource(ctx, b.Ref(), sub, spec); err != nil {
			return err
		}
		n.log.InfoContext(ctx, "added source", "dot", v.Dot.String(), "branch", b.Name, "subdot", sub, "kind", spec.Kind)
		return nil
	})
}

// removeSource is Sources.Remove.
func (n *Node) removeSource(ctx context.Context, v VolumeName) error {
	return n.withSource(ctx, v, func(sm SourceManager, b *Branch, sub string) error {
		return sm.RemoveSource(ctx, b.Ref(), sub)
	})
}

// listSources is Sources.List.
func (n *Node) listSources(ctx context.Context, name DotName, branch string) ([]Source, error) {
	sm, _, b, err := n.sourceManager(ctx, VolumeName{Dot: name, Branch: branch})
	if err != nil {
		return nil, err
	}
	return sm.Sources(ctx, b.Ref())
}

// sourceLifecycle is Sources.Lifecycle.
func (n *Node) sourceLifecycle(ctx context.Context, v VolumeName, action string) error {
	switch action {
	case SourceActivate, SourceDeactivate, SourceCollectGarbage:
	default:
		return fmt.Errorf("%w: unknown source action %q; use %s, %s or %s", ErrInvalidArgument, action, SourceActivate, SourceDeactivate, SourceCollectGarbage)
	}
	return n.withSource(ctx, v, func(sm SourceManager, b *Branch, sub string) error {
		if err := sm.SourceLifecycle(ctx, b.Ref(), sub, action); err != nil {
			return err
		}
		n.log.InfoContext(ctx, "source "+action, "dot", v.Dot.String(), "branch", b.Name, "subdot", sub)
		return nil
	})
}
