package dotmesh

import (
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
		out = append(out, Holder{PID: pid, Command: strings.TrimSpace(string(comm)), Path: held, Subdot: subdotOf(root, held, isDir)})
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
