package dotmesh

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Holder is a process with its working directory or an open file inside a
// working tree.
type Holder struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
	// Path is what it holds: its working directory, or else a file.
	Path string `json:"path"`
	// Subdot is the subdot Path is in (RootSubdot: the top of the tree).
	Subdot string `json:"subdot"`

	cwd bool // Path is its working directory, not an open file
}

// maxHolders bounds how many holders a scan reports.
const maxHolders = 20

// holders finds, as fuser does, the processes this node may inspect
// (/proc/PID/cwd and /proc/PID/fd/* of its own user's, or of all when
// root) whose working directory or open files are root or below it; the
// node itself is left out. At most limit are returned, by pid. Where
// there is no /proc, none.
func holders(root string, limit int) []Holder {
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r // the kernel reports resolved paths
	}
	under := func(p string) bool {
		return p == root || strings.HasPrefix(p, root+"/")
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != self {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	var out []Holder
	for _, pid := range pids {
		if len(out) == limit {
			break
		}
		dir := "/proc/" + strconv.Itoa(pid)
		held, isDir := "", true
		if cwd, err := os.Readlink(dir + "/cwd"); err == nil && under(cwd) {
			held = cwd
		} else if fds, err := os.ReadDir(dir + "/fd"); err == nil {
			for _, fd := range fds {
				if p, err := os.Readlink(dir + "/fd/" + fd.Name()); err == nil && under(p) {
					held, isDir = p, false
					break
				}
			}
		}
		if held == "" {
			continue
		}
		comm, _ := os.ReadFile(dir + "/comm")
		out = append(out, Holder{PID: pid, Command: strings.TrimSpace(string(comm)), Path: held, Subdot: subdotOf(root, held, isDir), cwd: isDir})
	}
	return out
}

// subdotOf names the subdot that p, below root, is in: the first
// component of p under root, when that is a directory.
func subdotOf(root, p string, isDir bool) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
	first, _, nested := strings.Cut(rel, "/")
	if rel == "" || (!nested && !isDir) {
		return RootSubdot
	}
	return first
}

// ResetReport is what a reset did, for a caller that tells a user.
type ResetReport struct {
	Commit
	// Holders are processes on this node's machine whose working
	// directory was in the branch's tree and is no longer the directory
	// at its path: the reset put a new one there (a swapped subvolume or
	// filesystem), so they still see the old state. The files backend
	// resets in place, so none there.
	Holders []Holder `json:"holders,omitempty"`
}

// ResetReport is Reset that also names the processes left in a working
// directory the reset replaced. They are never a reason to refuse.
func (n *Node) ResetReport(ctx context.Context, name DotName, branch, ref string, opts ResetOptions) (*ResetReport, error) {
	var before []Holder
	if d, b, _, err := n.resolveBranch(ctx, name, branch); err == nil {
		if root := n.localRoot(ctx, d, b.Name); root != "" {
			before = holders(root, maxHolders)
		}
	}
	c, err := n.Reset(ctx, name, branch, ref, opts)
	if err != nil {
		return nil, err
	}
	r := &ResetReport{Commit: *c}
	for _, h := range before {
		if h.cwd && leftBehind(h) {
			r.Holders = append(r.Holders, h)
		}
	}
	return r, nil
}

// leftBehind: h's working directory is not (any more) the directory at
// the path it had.
func leftBehind(h Holder) bool {
	held, err := os.Stat("/proc/" + strconv.Itoa(h.PID) + "/cwd")
	if err != nil {
		return false // gone
	}
	now, err := os.Stat(h.Path)
	return err != nil || !os.SameFile(held, now)
}
