package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The diff section: `dm diff --stat` between two commits against
// `diff -rq` of the two trees, on the files backend (from the manifests:
// goal <= 0.05) and on zfs and btrfs (from the snapshots: goal <= 1).

// pairRatios times a (dm) and b (the reference) runs times, alternating
// which goes first and syncing before each, and returns the medians of
// a, b and of the ratios a/b.
func pairRatios(runs int, a, b func() error) (ma, mb time.Duration, ratio float64, err error) {
	var as, bs []time.Duration
	var rs []float64
	for i := 0; i < runs; i++ {
		var da, db time.Duration
		stepA := func() (err error) { syncDisks(); da, err = timed(a); return err }
		stepB := func() (err error) { syncDisks(); db, err = timed(b); return err }
		order := []func() error{stepA, stepB}
		if i%2 == 1 {
			order = []func() error{stepB, stepA}
		}
		for _, step := range order {
			if err := step(); err != nil {
				return 0, 0, 0, err
			}
		}
		as, bs, rs = append(as, da), append(bs, db), append(rs, da.Seconds()/db.Seconds())
	}
	return median(as), median(bs), medianF(rs), nil
}

func syncDisks() { _ = exec.Command("sync").Run() }

// diffRQ runs `diff -rq a b`, which exits 1 when the trees differ.
func diffRQ(a, b string) func() error {
	return func() error {
		out, err := exec.Command("diff", "-rq", a, b).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("diff -rq %s %s: %v: %s", a, b, err, lastLines(string(out)))
		}
		return fmt.Errorf("diff -rq %s %s found no difference: the 1%% change did not happen", a, b)
	}
}

// dmDiffStat runs `dm diff --stat` between two commits of dot and checks
// that it found the change.
func dmDiffStat(sh func(args ...string) (string, error), dot, from, to string) func() error {
	return func() error {
		out, err := sh("diff", "--stat", "--dot", dot, from, to)
		if err != nil {
			return err
		}
		if !strings.Contains(out, "changed") {
			return fmt.Errorf("dm diff --stat %s %s found nothing: %q", from, to, out)
		}
		return nil
	}
}

// dotToDiff makes dot bench and returns the directory of its subdot files.
func dotToDiff(sh func(args ...string) (string, error)) (string, error) {
	if _, err := sh("init", "bench"); err != nil {
		return "", err
	}
	return sh("path", "bench.files")
}

// commitOnePercent commits dot bench, changes 1% of sub and commits
// again, returning both commits.
func commitOnePercent(sh func(args ...string) (string, error), sub string, size int64) (c1, c2 string, err error) {
	if c1, err = sh("commit", "--dot", "bench", "-m", "first", "-H"); err != nil {
		return "", "", err
	}
	if err := changeOnePercent(sub, size, 1); err != nil {
		return "", "", err
	}
	c2, err = sh("commit", "--dot", "bench", "-m", "1% changed", "-H")
	return c1, c2, err
}

func runDiff(dm string, size, snapSize int64, runs int, keep bool) error {
	if _, err := exec.LookPath("diff"); err != nil {
		return skipped{"diff (GNU diffutils) is not installed; this section compares against diff -rq"}
	}
	v := newVerdicts("diff")
	if err := diffFiles(dm, size, runs, keep, v); err != nil {
		return err
	}
	for _, k := range []snapKind{zfsKind, btrfsKind} {
		if snapSize <= 0 {
			fmt.Printf("diff on %s: not run (-diff-snap-size 0)\n", k.name)
			continue
		}
		err := diffSnapshots(k, dm, snapSize, runs, keep, v)
		var skip skipped
		switch {
		case err == nil:
		case asSkipped(err, &skip):
			fmt.Printf("diff on %s: skipped: %s\n", k.name, skip.why)
		default:
			return fmt.Errorf("%s: %w", k.name, err)
		}
	}
	return v.flush()
}

func asSkipped(err error, s *skipped) bool {
	sk, ok := err.(skipped)
	if ok {
		*s = sk
	}
	return ok
}

// diffFiles: a size-byte tree on the files backend, committed, 1% of it
// changed, committed again; its two states are also kept as plain
// directories for diff -rq.
func diffFiles(dm string, size int64, runs int, keep bool, v *verdicts) error {
	work, err := os.MkdirTemp("", "dotmesh-bench-diff-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	fmt.Printf("files: generating a %s tree, committing it, changing 1%% and committing again...\n", human(size))
	treeA, treeB := filepath.Join(work, "a"), filepath.Join(work, "b")
	n, err := generate(treeA, size)
	if err != nil {
		return err
	}
	data := filepath.Join(work, "data")
	env := append(os.Environ(), "DOTMESH_CONFIG="+filepath.Join(work, "config"))
	sh := dmRunner(dm, env)
	port, err := freePort()
	if err != nil {
		return err
	}
	if _, err := sh(clusterInitArgs(data, port)...); err != nil {
		return err
	}
	defer sh("cluster", "stop")
	sub, err := dotToDiff(sh)
	if err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", treeA+"/.", sub).CombinedOutput(); err != nil {
		return fmt.Errorf("copying the tree: %v: %s", err, out)
	}
	c1, c2, err := commitOnePercent(sh, sub, size)
	if err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", sub+"/.", treeB).CombinedOutput(); err != nil {
		return fmt.Errorf("copying the changed tree: %v: %s", err, out)
	}
	stat, err := sh("diff", "--stat", "--dot", "bench", c1, c2)
	if err != nil {
		return err
	}
	lines := strings.Split(stat, "\n")
	fmt.Printf("files: %d files; dm diff --stat says:%s\n", n, lines[len(lines)-1])
	d, r, ratio, err := pairRatios(runs, dmDiffStat(sh, "bench", c1, c2), diffRQ(treeA, treeB))
	if err != nil {
		return err
	}
	fmt.Printf("files: dm diff --stat %v, diff -rq %v (medians of %d)\n", d.Round(time.Millisecond), r.Round(time.Millisecond), runs)
	v.row("files: dm diff --stat of two commits (1% of "+human(size)+" changed) / diff -rq of the trees", ratio, "<= 0.05", ratio <= 0.05)
	return nil
}

// diffSnapshots: the same change on a zfs or btrfs node, against diff -rq
// of the two commits' snapshots, mounted (zfs: clones of them, made once,
// as dm makes its own once and keeps them; the first call of each side,
// making the clones, is a row of its own).
func diffSnapshots(k snapKind, dm string, size int64, runs int, keep bool, v *verdicts) (err error) {
	if err := k.check(); err != nil {
		return err
	}
	n, err := startSnapNode(k, dm, size)
	if err != nil {
		return err
	}
	defer func() {
		if serr := n.stop(keep); serr != nil && err == nil {
			err = serr
		}
	}()
	sh, work := n.sh, n.work
	fmt.Printf("%s: writing %s into a dot, committing it, changing 1%% and committing again...\n", k.name, human(size))
	if err := n.init(); err != nil {
		return err
	}
	sub, err := dotToDiff(sh)
	if err != nil {
		return err
	}
	if _, err := generate(sub, size); err != nil {
		return err
	}
	c1, c2, err := commitOnePercent(sh, sub, size)
	if err != nil {
		return err
	}
	var a, b string
	if k.name == "zfs" {
		// zfs-fuse has no .zfs/snapshot: both sides read clones. dm keeps
		// its clones for the next diff, so the runs below compare warm
		// clones on both sides; the first call, which makes dm's clones,
		// is set against making diff -rq's and its first run.
		syncDisks()
		dmCold, err := timed(dmDiffStat(sh, "bench", c1, c2))
		if err != nil {
			return err
		}
		syncDisks()
		start := time.Now()
		if a, b, err = zfsCloneMounts(n.pool, work, c1, c2); err != nil {
			return err
		}
		if err := diffRQ(a, b)(); err != nil {
			return err
		}
		rqCold := time.Since(start)
		fmt.Printf("zfs: first dm diff --stat (makes its clones) %v, zfs clone of both + diff -rq %v\n", dmCold.Round(time.Millisecond), rqCold.Round(time.Millisecond))
		v.row("zfs: first dm diff --stat / zfs clone of both snapshots + diff -rq", dmCold.Seconds()/rqCold.Seconds(), "<= 1", dmCold <= rqCold)
	} else {
		a, b, err = btrfsSnapDirs(filepath.Join(n.data, "btrfs", "btrfs"), c1, c2)
	}
	if err != nil {
		return err
	}
	d, r, ratio, err := pairRatios(runs, dmDiffStat(sh, "bench", c1, c2), diffRQ(a, b))
	if err != nil {
		return err
	}
	fmt.Printf("%s: dm diff --stat %v, diff -rq of the snapshots %v (medians of %d)\n", k.name, d.Round(time.Millisecond), r.Round(time.Millisecond), runs)
	v.row(k.name+": dm diff --stat of two commits / diff -rq of the two snapshot mounts", ratio, "<= 1", ratio <= 1)
	return nil
}

// zfsCloneMounts mounts the snapshots of two commits as clones (zfs-fuse
// has no .zfs/snapshot directory); they go with the pool.
func zfsCloneMounts(pool, work string, commits ...string) (string, string, error) {
	zfs, err := sbin("zfs")
	if err != nil {
		return "", "", err
	}
	snaps, err := findSnaps(zfs, pool, commits...)
	if err != nil {
		return "", "", err
	}
	var dirs []string
	for i, c := range commits {
		dir := filepath.Join(work, fmt.Sprint("snap", i))
		if out, err := exec.Command(zfs, "clone", "-o", "mountpoint="+dir, "-o", "atime=off", snaps[c], fmt.Sprintf("%s/benchdiff%d", pool, i)).CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("zfs clone %s: %v: %s", snaps[c], err, out)
		}
		dirs = append(dirs, dir)
	}
	return dirs[0], dirs[1], nil
}

// btrfsSnapDirs finds the read-only snapshots of two commits under the
// backend's mount: .../<commit id>/snap.
func btrfsSnapDirs(root string, commits ...string) (string, string, error) {
	found := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if d.Name() == "snap" {
			for _, c := range commits {
				if filepath.Base(filepath.Dir(p)) == c {
					found[c] = p
				}
			}
			return filepath.SkipDir
		}
		if strings.Count(strings.TrimPrefix(p, root), "/") > 8 {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	if len(found) != len(commits) {
		return "", "", fmt.Errorf("no snapshots of commits %v under %s (found %v)", commits, root, found)
	}
	return found[commits[0]], found[commits[1]], nil
}
