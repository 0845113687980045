package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// nodeProgram is the name of the all-in-one dm (this package built
// without the dmlight tag) that a light dm hands the commands that run
// nodes, open bucket repositories, talk to https nodes or write man pages
// to.
const nodeProgram = "dm-node"

// nodeProgramPath finds nodeProgram for the dm at exe: beside it (bin/,
// a tarball), else in ../lib/dotmesh (a package's /usr/bin/dm and
// /usr/lib/dotmesh/dm-node).
func nodeProgramPath(exe string) (string, error) {
	if real, err := filepath.EvalSymlinks(exe); err == nil {
		exe = real
	}
	dir := filepath.Dir(exe)
	tried := []string{filepath.Join(dir, nodeProgram), filepath.Join(dir, "..", "lib", "dotmesh", nodeProgram)}
	for _, p := range tried {
		st, err := os.Stat(p)
		if err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("this dm runs nodes, bucket repositories, https remotes and man pages through %s: %w", nodeProgram, err)
		}
	}
	return "", fmt.Errorf("this dm runs nodes, bucket repositories, https remotes and man pages through %s, which is neither at %s nor at %s: install it there (`make build` builds both)", nodeProgram, tried[0], filepath.Clean(tried[1]))
}

// handOver replaces this process with dm-node running the same command
// line (the same program name, environment, descriptors and PID, so that
// a supervisor or a shell sees no difference). It returns only on
// failure.
func handOver(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("this dm runs nodes, bucket repositories, https remotes and man pages through %s, but cannot find itself: %w", nodeProgram, err)
	}
	p, err := nodeProgramPath(exe)
	if err != nil {
		return err
	}
	argv0 := nodeProgram
	if len(os.Args) > 0 {
		argv0 = os.Args[0]
	}
	if err := syscall.Exec(p, append([]string{argv0}, args...), os.Environ()); err != nil {
		return fmt.Errorf("starting %s: %w", p, err)
	}
	return nil
}
