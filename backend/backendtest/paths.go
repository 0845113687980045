package backendtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/stretchr/testify/require"

	bboltstore "github.com/dotmesh-io/dotmesh/cluster/bbolt"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// pathTests check the Node's stable paths on the backend: a dot's link
// follows checkout, a process inside the old tree is named, a reset and
// a rename keep the link, and a start repairs links a crash left wrong.
var pathTests = []backendTest{
	{"StablePathFollowsCheckout", testStablePath},
}

func testStablePath(f *fixture) {
	t, ctx := f.t, f.ctx
	dir := t.TempDir()
	regPath := filepath.Join(dir, "registry.db")
	paths := filepath.Join(dir, "dots")
	require.NoError(t, os.Mkdir(paths, 0o700))
	start := func() *dotmesh.Node {
		st, err := bboltstore.Open(regPath, bboltstore.Options{})
		require.NoError(t, err)
		n, err := dotmesh.NewNode(ctx, dotmesh.Options{Store: st, Backends: []dotmesh.StorageBackend{reopened{f.be}}, PathsDir: paths})
		require.NoError(t, err)
		t.Cleanup(func() { n.Close() })
		return n
	}
	n := start()
	app := dotmesh.DotName{Namespace: dotmesh.DefaultNamespace, Name: "paths"}
	_, err := n.CreateDot(ctx, app, dotmesh.CreateDotOptions{Backend: f.be.Name()})
	require.NoError(t, err)
	link := filepath.Join(paths, app.Namespace, app.Name)
	vol := dotmesh.VolumeName{Dot: app, Subdot: "db"}
	p, err := n.Path(ctx, vol)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(link, "db"), p, "the stable path of app.db")
	root, err := n.Path(ctx, dotmesh.VolumeName{Dot: app, Subdot: dotmesh.RootSubdot})
	require.NoError(t, err)
	require.Equal(t, link, root, "the stable path of the whole tree")
	branchDir := func(branch string) string {
		t.Helper()
		v := vol
		v.Branch = branch
		d, err := n.Path(ctx, v) // with a branch: the branch's own directory
		require.NoError(t, err)
		real, err := n.SubdotPath(ctx, v)
		require.NoError(t, err)
		require.Equal(t, real, d, "Path with a branch is the branch's directory")
		return d
	}
	read := func(d string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(d, "f"))
		require.NoError(t, err)
		return string(b)
	}
	require.NoError(t, os.WriteFile(filepath.Join(p, "f"), []byte("master"), 0o644))
	_, err = n.Commit(ctx, app, "", dotmesh.CommitOptions{Message: "one", Author: "test"})
	require.NoError(t, err)

	// A process that entered the stable path before the checkout.
	sleep := exec.Command("sleep", "300")
	sleep.Dir = p
	require.NoError(t, sleep.Start(), "starting sleep (coreutils) inside the working tree")
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			sleep.Process.Kill()
			sleep.Wait()
		}
	}
	t.Cleanup(stop)

	r, err := n.CheckoutReport(ctx, app, "exp", dotmesh.CheckoutOptions{Create: true})
	require.NoError(t, err)
	require.Equal(t, "exp", r.Current)
	require.Equal(t, dotmesh.DefaultBranch, r.Previous)
	require.Equal(t, link, r.Path)
	var found *dotmesh.Holder
	for i, h := range r.Holders {
		if h.PID == sleep.Process.Pid {
			found = &r.Holders[i]
		}
	}
	require.NotNil(t, found, "checkout did not name sleep (pid %d) inside the old tree: %+v", sleep.Process.Pid, r.Holders)
	require.Equal(t, "sleep", found.Command)
	require.Equal(t, "db", found.Subdot)
	masterDir, err := filepath.EvalSymlinks(branchDir(dotmesh.DefaultBranch))
	require.NoError(t, err)
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(sleep.Process.Pid) + "/cwd")
	require.NoError(t, err)
	require.Equal(t, masterDir, cwd, "the process stays in the old branch's directory")

	// The same path, entered again, is the new branch.
	require.NoError(t, os.WriteFile(filepath.Join(p, "f"), []byte("exp"), 0o644))
	require.Equal(t, "exp", read(branchDir("exp")))
	require.Equal(t, "master", read(branchDir(dotmesh.DefaultBranch)))

	// Nobody inside: no holders.
	stop()
	r, err = n.CheckoutReport(ctx, app, dotmesh.DefaultBranch, dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	require.Empty(t, r.Holders, "holders of exp's tree, which nobody entered")
	require.Equal(t, "master", read(p))
	r, err = n.CheckoutReport(ctx, app, "exp", dotmesh.CheckoutOptions{})
	require.NoError(t, err)
	require.Empty(t, r.Holders, "holders after the process ended")
	require.Equal(t, "exp", read(p))

	// A reset keeps the link where it is.
	before, err := os.Readlink(link)
	require.NoError(t, err)
	_, err = n.Reset(ctx, app, "", "HEAD", dotmesh.ResetOptions{Hard: true})
	require.NoError(t, err)
	after, err := os.Readlink(link)
	require.NoError(t, err)
	require.Equal(t, before, after, "reset moved the stable link")
	require.Equal(t, "master", read(p), "reset --hard HEAD on exp restores the commit")

	// Renaming the current branch keeps its storage, so the link stays
	// right and the path shows the renamed branch.
	_, err = n.RenameBranch(ctx, app, "exp", "trial")
	require.NoError(t, err)
	p2, err := n.Path(ctx, vol)
	require.NoError(t, err)
	require.Equal(t, p, p2)
	require.NoError(t, os.WriteFile(filepath.Join(p, "f"), []byte("trial"), 0o644))
	require.Equal(t, "trial", read(branchDir("trial")))
	require.NoError(t, os.WriteFile(filepath.Join(p, "f"), []byte("master"), 0o644)) // as committed
	before, err = os.Readlink(link)
	require.NoError(t, err)

	// A reset that puts a new directory at the path (btrfs swaps the
	// subvolume) names a process left in the old one; one in place (the
	// files backend) names none.
	sleep = exec.Command("sleep", "300")
	sleep.Dir = p
	require.NoError(t, sleep.Start(), "starting sleep (coreutils) inside the working tree")
	stopped = false
	rr, err := n.ResetReport(ctx, app, "", "HEAD", dotmesh.ResetOptions{Hard: true})
	if f.be.Name() == "zfs" && errors.Is(err, dotmesh.ErrInUse) {
		// zfs cannot unmount a filesystem a process is in: the reset
		// refuses instead, and runs once the process is gone.
		stop()
		_, err = n.Reset(ctx, app, "", "HEAD", dotmesh.ResetOptions{Hard: true})
		require.NoError(t, err)
	} else {
		require.NoError(t, err)
		held, err := os.Stat("/proc/" + strconv.Itoa(sleep.Process.Pid) + "/cwd")
		require.NoError(t, err)
		now, err := os.Stat(p)
		require.NoError(t, err)
		named := false
		for _, h := range rr.Holders {
			named = named || h.PID == sleep.Process.Pid
		}
		require.Equal(t, !os.SameFile(held, now), named, "reset names the process iff its directory was replaced: %+v", rr.Holders)
		switch f.be.Name() {
		case "btrfs":
			require.True(t, named, "btrfs swaps the working subvolume on reset")
		case "dump":
			require.False(t, named, "the files backend resets in place")
		}
	}
	stop()

	// A crash left the link wrong, a switch's temp dir and a deleted
	// dot's link: the next start repairs and removes them.
	require.NoError(t, n.Close())
	require.NoError(t, os.Remove(link))
	require.NoError(t, os.Symlink(filepath.Join(dir, "nowhere"), link))
	tmp := filepath.Join(paths, app.Namespace, "."+app.Name+".123")
	require.NoError(t, os.Mkdir(tmp, 0o700))
	require.NoError(t, os.Symlink(before, filepath.Join(tmp, "l")))
	stale := filepath.Join(paths, "gone-ns", "gone")
	require.NoError(t, os.Mkdir(filepath.Dir(stale), 0o700))
	require.NoError(t, os.Symlink(before, stale))
	n = start()
	got, err := os.Readlink(link)
	require.NoError(t, err)
	require.Equal(t, before, got, "the link after a start")
	for _, gone := range []string{tmp, stale, filepath.Dir(stale)} {
		_, err := os.Lstat(gone)
		require.ErrorIs(t, err, os.ErrNotExist, "%s after a start", gone)
	}
	require.Equal(t, "master", read(p))

	require.NoError(t, n.DeleteDot(ctx, app))
	_, err = os.Lstat(link)
	require.ErrorIs(t, err, os.ErrNotExist, "the link of a deleted dot")
}
