// Package hooks runs the commit hooks of a node's dots: the
// dotmesh.HookRunner a daemon gives its Node. A command hook runs in its
// own process group with a small environment (DM_* variables saying
// which dot, branch and directories), its output logged line by line;
// when its timeout passes the whole group is killed. An HTTP hook is a
// POST of the same facts as JSON. The quiesce built-ins talk to the
// application: postgresql (CHECKPOINT, over pgx), mysql (FLUSH TABLES
// WITH READ LOCK held on one client connection until released) and
// fsfreeze (fsfreeze -f / -u of a subdot that is its own file system,
// always thawed).
package hooks

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"

	"github.com/dotmesh-io/dotmesh/backend/dump/source"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Runner is the node's dotmesh.HookRunner.
type Runner struct {
	log *slog.Logger
}

var _ dotmesh.HookRunner = (*Runner)(nil)

// New returns a Runner logging to log (slog.Default() when nil) where a
// call brings no logger of its own.
func New(log *slog.Logger) *Runner {
	if log == nil {
		log = slog.Default()
	}
	return &Runner{log: log}
}

func (r *Runner) logger(call dotmesh.HookCall) *slog.Logger {
	if call.Log != nil {
		return call.Log
	}
	return r.log
}

// Check implements dotmesh.HookRunner: a command's program is found, a
// database URL parses.
func (r *Runner) Check(h dotmesh.Hook) error {
	if err := h.Validate(); err != nil {
		return err
	}
	switch h.Kind {
	case dotmesh.HookCommand:
		if _, err := exec.LookPath(h.Command[0]); err != nil {
			return fmt.Errorf("%w: hook command %q is not found on the node: %v", dotmesh.ErrInvalidArgument, h.Command[0], err)
		}
	case dotmesh.HookPostgreSQL:
		_, err := pgConfig(h.URL)
		return err
	case dotmesh.HookMySQL:
		_, err := source.Parse(source.MySQL, h.URL)
		return err
	case dotmesh.HookFSFreeze:
		if _, err := exec.LookPath("fsfreeze"); err != nil {
			return fmt.Errorf("%w: fsfreeze is not installed on the node (util-linux)", dotmesh.ErrUnavailable)
		}
	}
	return nil
}

// Run implements dotmesh.HookRunner.
func (r *Runner) Run(ctx context.Context, h dotmesh.Hook, call dotmesh.HookCall) error {
	switch h.Kind {
	case dotmesh.HookCommand:
		return r.command(ctx, h, call)
	case dotmesh.HookHTTP:
		return r.http(ctx, h, call)
	}
	return fmt.Errorf("%w: a %s hook is not run at %s", dotmesh.ErrInvalidArgument, h.Kind, h.Stage)
}

// Quiesce implements dotmesh.HookRunner.
func (r *Runner) Quiesce(ctx context.Context, h dotmesh.Hook, call dotmesh.HookCall) (func(context.Context) error, error) {
	switch h.Kind {
	case dotmesh.HookPostgreSQL:
		return r.postgresql(ctx, h, call)
	case dotmesh.HookMySQL:
		return r.mysql(ctx, h, call)
	case dotmesh.HookFSFreeze:
		return r.fsfreeze(ctx, h, call)
	}
	return nil, fmt.Errorf("%w: %s is not a quiesce hook", dotmesh.ErrInvalidArgument, h.Kind)
}
