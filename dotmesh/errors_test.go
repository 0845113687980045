package dotmesh_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestTypedErrors: each typed error is its sentinel and is found by
// errors.As through wrapping; its message is plain words with the data.
func TestTypedErrors(t *testing.T) {
	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "app"}
	cause := fmt.Errorf("%w: the tool failed", dotmesh.ErrUnavailable)
	for _, c := range []struct {
		err      error
		sentinel error
		want     string
	}{
		{&dotmesh.NotFoundError{Kind: dotmesh.KindDot, Dot: app}, dotmesh.ErrNotFound, "not found: dot app does not exist"},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindBranch, Name: "b", Dot: app}, dotmesh.ErrNotFound, "not found: dot app has no branch b"},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindCommit, Name: "c1", Dot: app}, dotmesh.ErrNotFound, "not found: no commit c1 in dot app"},
		{&dotmesh.NotFoundError{Kind: dotmesh.KindIncoming, Name: "b", Dot: app}, dotmesh.ErrNotFound, "not found: no incoming transfer of app@b on this node"},
		{&dotmesh.NotFoundError{Kind: "tag", Name: "v1", Dot: app}, dotmesh.ErrNotFound, "not found: no tag v1 in dot app"},
		{&dotmesh.NoCommitsError{Dot: app, Branch: "master"}, dotmesh.ErrNotFound, "not found: branch master of app has no commits yet"},
		{&dotmesh.DirtyError{Dot: app, Branch: "master", Where: "this node", Bytes: 3}, dotmesh.ErrDirty,
			"uncommitted changes: branch master of app on this node has uncommitted changes (about 3 bytes); nothing was transferred. Commit or discard them there, then run the transfer again"},
		{&dotmesh.PartlyRestoredError{Dot: app, Branch: "master", Target: "c1"}, dotmesh.ErrConflict,
			"conflict: the working state of app@master is partly restored to c1 (an interrupted reset or transfer); repeat that, or reset the branch hard to HEAD"},
		{&dotmesh.PartlyRestoredError{Dot: app, Branch: "master", Target: "c1", Err: cause}, dotmesh.ErrUnavailable,
			"restoring app@master to c1: unavailable: the tool failed (the working state may be partly restored: run it again, or reset the branch hard to HEAD)"},
		{&dotmesh.MasterDownError{Dot: app, Branch: "master", Node: "n1"}, dotmesh.ErrUnavailable,
			"unavailable: branch master of app has its working state on node n1, which is not running; a take-over moves it here, losing that node's uncommitted changes"},
		{&dotmesh.SourceBoundError{Ref: dotmesh.BranchRef{Dot: "d1", Branch: "master"}, Subdot: "db", Kind: "redis"}, dotmesh.ErrAlreadyExists,
			"already exists: subdot db of d1@master is bound to a redis source already; remove that source first"},
		{&dotmesh.InvalidOptionError{Option: "GCOptions.Keep", Problem: "keep must be >= 0"}, dotmesh.ErrInvalidArgument,
			"invalid argument: keep must be >= 0 (GCOptions.Keep)"},
		{&dotmesh.UncommittedError{Dot: app, Branch: "master", Bytes: 9}, dotmesh.ErrDirty,
			"uncommitted changes: branch master of app has 9 uncommitted bytes; commit them, or reset with ResetOptions.Hard to discard them"},
		{&dotmesh.MountsInUseError{Op: "reset", Users: "docker container c1"}, dotmesh.ErrInUse,
			"in use: reset would change data under docker container c1; stop them first, or set the Restart option to stop and start them around the reset"},
		{&dotmesh.DivergedError{Dot: app, Branch: "master", Common: "c1"}, dotmesh.ErrDiverged,
			"conflict: diverged: branch master of app has diverged: both sides have commits the other lacks (the last common commit is c1); nothing was changed. TransferOptions.StashOnDivergence moves the receiving side's commits to a new branch and takes the incoming ones"},
		{&dotmesh.DivergedError{Dot: app, Branch: "master", Start: "c2", Head: "c3"}, dotmesh.ErrDiverged,
			"conflict: diverged: branch master of app: the sending side's history starts at c2 (gc removed what came before) and the receiving side's head c3 is not in it, so it cannot be told whether the incoming commits follow it; nothing was changed. TransferOptions.StashOnDivergence moves the receiving side's commits to a new branch and takes the incoming ones"},
	} {
		if c.err.Error() != c.want {
			t.Errorf("%T: %q, want %q", c.err, c.err, c.want)
		}
		wrapped := fmt.Errorf("outer: %w", c.err)
		if !errors.Is(wrapped, c.sentinel) {
			t.Errorf("%T is not %v", c.err, c.sentinel)
		}
		if c.sentinel != dotmesh.ErrConflict && c.sentinel != dotmesh.ErrDiverged && errors.Is(wrapped, dotmesh.ErrConflict) {
			t.Errorf("%T is a conflict", c.err)
		}
		target := reflectNew(c.err)
		if !errors.As(wrapped, target) {
			t.Errorf("errors.As finds no %T", c.err)
		}
	}
	var pr *dotmesh.PartlyRestoredError
	if err := error(&dotmesh.PartlyRestoredError{Err: cause}); !errors.As(err, &pr) || !errors.Is(err, cause) {
		t.Error("a partly restored error does not wrap its cause")
	}
}

func reflectNew(err error) any {
	switch err.(type) {
	case *dotmesh.NotFoundError:
		return new(*dotmesh.NotFoundError)
	case *dotmesh.NoCommitsError:
		return new(*dotmesh.NoCommitsError)
	case *dotmesh.DirtyError:
		return new(*dotmesh.DirtyError)
	case *dotmesh.PartlyRestoredError:
		return new(*dotmesh.PartlyRestoredError)
	case *dotmesh.MasterDownError:
		return new(*dotmesh.MasterDownError)
	case *dotmesh.SourceBoundError:
		return new(*dotmesh.SourceBoundError)
	case *dotmesh.InvalidOptionError:
		return new(*dotmesh.InvalidOptionError)
	case *dotmesh.UncommittedError:
		return new(*dotmesh.UncommittedError)
	case *dotmesh.MountsInUseError:
		return new(*dotmesh.MountsInUseError)
	case *dotmesh.DivergedError:
		return new(*dotmesh.DivergedError)
	}
	panic(fmt.Sprintf("%T", err))
}

// cliFlag matches a command-line flag (-m, --hard) starting a word.
var cliFlag = regexp.MustCompile("(^|[\\s(\"`])--?[a-z]")

// TestNoCommandAdviceInTheCore: no string in the library names a dm
// command or a command-line flag; frontends add their advice to the typed
// errors.
func TestNoCommandAdviceInTheCore(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources: %v", err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && strings.Contains(lit.Value, "`dm ") {
				t.Errorf("%s: a string names a dm command: %s", fset.Position(lit.Pos()), lit.Value)
			}
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && cliFlag.MatchString(lit.Value) {
				t.Errorf("%s: a string names a command-line flag: %s", fset.Position(lit.Pos()), lit.Value)
			}
			return true
		})
	}
}
