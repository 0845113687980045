package dotmesh

import (
	"io/fs"
	"syscall"
)

func fileInodeID(info fs.FileInfo) (inodeID, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return inodeID{}, false
	}
	return inodeID{ino: st.Ino, ctime: st.Ctim.Nano()}, true
}
