package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// The small section: a tree of -small-files files of 0–4 KiB in nested
// directories, like a source tree, on the files backend. It measures
// dm's first, unchanged and 1% commits against restic backup of the same
// states, `dm checkout -b` (a restore of the whole tree) against `cp -a`
// + sync and restic restore, and the node's peak memory in each commit
// against restic backup's (issue 22: <= 300 MB).

type smallSample struct {
	dmFirst, dmSame, dmChanged, dmCheckout  time.Duration
	resticFirst, resticSame, resticChanged  time.Duration
	resticRestore, cp                       time.Duration
	dmFirstRSS, dmChangedRSS, dmCheckoutRSS int64
	resticRSS                               int64
	dmStored, dmChangeAdded                 int64
	resticStored                            int64
}

func runSmall(dm string, files, runs int, keep bool) error {
	if err := needRestic(); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "dotmesh-bench-small-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	tree := filepath.Join(work, "tree")
	start := time.Now()
	bytes, err := generateSmall(tree, files)
	if err != nil {
		return err
	}
	fmt.Printf("generated %d files of 0-4 KiB (%s) in %v; %d runs; medians below\n\n", files, human(bytes), time.Since(start).Round(time.Second), runs)
	var samples []smallSample
	for i := 0; i < runs; i++ {
		s, err := smallRun(dm, work, tree, files, i, keep)
		if err != nil {
			return err
		}
		samples = append(samples, s)
		fmt.Printf("run %d: commit first %v (restic %v), unchanged %v (restic %v), 1%% change %v (restic %v); checkout -b %v, cp -a + sync %v, restic restore %v\n",
			i+1, ms(s.dmFirst), ms(s.resticFirst), ms(s.dmSame), ms(s.resticSame), ms(s.dmChanged), ms(s.resticChanged), ms(s.dmCheckout), ms(s.cp), ms(s.resticRestore))
		fmt.Printf("       node peak memory: first commit %s, 1%% commit %s, checkout %s; restic backup %s; stored: dm %s (+%s for 1%%), restic %s\n",
			mb(s.dmFirstRSS), mb(s.dmChangedRSS), mb(s.dmCheckoutRSS), mb(s.resticRSS), mb(s.dmStored), mb(s.dmChangeAdded), mb(s.resticStored))
	}
	med := func(f func(smallSample) float64) float64 {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = f(s)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	v := newVerdicts("small")
	r := med(func(s smallSample) float64 { return s.dmFirst.Seconds() / s.resticFirst.Seconds() })
	v.row("first commit time / restic backup time", r, "<= 0.8", r <= 0.8)
	r = med(func(s smallSample) float64 { return s.dmSame.Seconds() / s.resticSame.Seconds() })
	v.row("unchanged re-commit time / restic's", r, "<= 0.8", r <= 0.8)
	r = med(func(s smallSample) float64 { return s.dmChanged.Seconds() / s.resticChanged.Seconds() })
	v.row("1% change commit time / restic's", r, "<= 0.8", r <= 0.8)
	r = med(func(s smallSample) float64 { return float64(s.dmStored) / float64(s.resticStored) })
	v.row("first commit stored bytes / restic repo bytes", r, "~1", r <= 1.25)
	r = med(func(s smallSample) float64 { return s.dmCheckout.Seconds() / s.cp.Seconds() })
	v.row("checkout -b time / cp -a + sync time", r, "<= 1", r <= 1)
	const memGoal = 300e6
	r = med(func(s smallSample) float64 { return float64(s.dmFirstRSS) / memGoal })
	v.row("node peak memory, first commit / 300 MB", r, "<= 1", r <= 1)
	r = med(func(s smallSample) float64 { return float64(s.dmChangedRSS) / memGoal })
	v.row("node peak memory, 1% commit / 300 MB", r, "<= 1", r <= 1)
	r = med(func(s smallSample) float64 { return float64(max(s.dmFirstRSS, s.dmChangedRSS)) / float64(s.resticRSS) })
	v.row("node peak memory in commits / restic backup's", r, "<= 1", r <= 1)
	return v.flush()
}

// smallRun starts a fresh node, copies the tree into a dot (cp -a +
// sync, timed: checkout's yardstick), then takes turns with restic (dm
// first on even runs) at the first, unchanged and 1% changed states of
// the dot's directory, and restores it: dm checkout -b against restic
// restore. The disks are synced before each timed command.
func smallRun(dm, work, tree string, files, i int, keep bool) (s smallSample, err error) {
	dir := filepath.Join(work, fmt.Sprint("run", i+1))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	n, err := startBenchNode(dm, dir, "a", "127.0.0.1")
	if err != nil {
		return s, err
	}
	r := &pushRig{dm: dm, work: dir, a: n}
	r.env = append(os.Environ(), "DOTMESH_CONFIG="+filepath.Join(dir, "config"))
	defer r.stop()
	if err := r.addRemote(n); err != nil {
		return s, err
	}
	if _, err := r.sh("--remote", "a", "init", "bench"); err != nil {
		return s, err
	}
	sub, err := r.sh("--remote", "a", "path", "bench.files")
	if err != nil {
		return s, err
	}
	if err := os.Remove(sub); err != nil && !os.IsNotExist(err) {
		return s, err
	}
	syscall.Sync()
	start := time.Now()
	if out, err := exec.Command("cp", "-a", tree, sub).CombinedOutput(); err != nil {
		return s, fmt.Errorf("cp -a: %v: %s", err, out)
	}
	syscall.Sync()
	s.cp = time.Since(start)

	pid := n.cmd.Process.Pid
	store := filepath.Join(n.data, "dump", "store")
	// dmTimed runs a dm command on the node and returns its time, the
	// node's peak memory during it and the bytes the store grew by.
	dmTimed := func(args ...string) (d time.Duration, peak, added int64, err error) {
		syscall.Sync()
		before, _ := du(store)
		// Writing 5 to clear_refs resets VmHWM: the peak is this command's.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			return 0, 0, 0, fmt.Errorf("reset the node's peak memory: %w", err)
		}
		start := time.Now()
		if _, err := r.sh(append([]string{"--remote", "a"}, args...)...); err != nil {
			return 0, 0, 0, err
		}
		d = time.Since(start)
		if peak, err = vmHWM(pid); err != nil {
			return 0, 0, 0, err
		}
		after, _ := du(store)
		return d, peak, after - before, nil
	}
	repo := filepath.Join(dir, "restic")
	renv := append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_CACHE_DIR="+filepath.Join(dir, "restic-cache"))
	restic := func(args ...string) (time.Duration, int64, error) {
		cmd := exec.Command("restic", append([]string{"--quiet", "--repo", repo}, args...)...)
		cmd.Env = renv
		syscall.Sync()
		return timedPeak(cmd)
	}
	if _, _, err := restic("init"); err != nil {
		return s, err
	}
	commit := func(d *time.Duration, peak, added *int64, msg string, more ...string) func() error {
		return func() error {
			var p, a int64
			var err error
			*d, p, a, err = dmTimed(append([]string{"commit", "--dot", "bench", "-m", msg}, more...)...)
			if peak != nil {
				*peak = p
			}
			if added != nil {
				*added = a
			}
			return err
		}
	}
	backup := func(d *time.Duration, peak *int64) func() error {
		return func() error {
			var p int64
			var err error
			*d, p, err = restic("backup", sub)
			if peak != nil {
				*peak = p
			}
			return err
		}
	}
	if err := inTurns(i, commit(&s.dmFirst, &s.dmFirstRSS, &s.dmStored, "first"), backup(&s.resticFirst, &s.resticRSS)); err != nil {
		return s, err
	}
	if err := inTurns(i, commit(&s.dmSame, nil, nil, "unchanged", "--allow-empty"), backup(&s.resticSame, nil)); err != nil {
		return s, err
	}
	if err := changeSmall(sub, int64(i)); err != nil {
		return s, err
	}
	if err := inTurns(i, commit(&s.dmChanged, &s.dmChangedRSS, &s.dmChangeAdded, "1% changed"), backup(&s.resticChanged, nil)); err != nil {
		return s, err
	}
	if s.resticStored, err = du(repo); err != nil {
		return s, err
	}
	target := filepath.Join(dir, "restored")
	checkout := func() error {
		var err error
		s.dmCheckout, s.dmCheckoutRSS, _, err = dmTimed("checkout", "--dot", "bench", "-b", "copy")
		return err
	}
	restore := func() error {
		cmd := exec.Command("restic", "--quiet", "--repo", repo, "restore", "latest", "--target", target)
		cmd.Env = renv
		syscall.Sync()
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("restic restore: %v: %s", err, out)
		}
		syscall.Sync()
		s.resticRestore = time.Since(start)
		return nil
	}
	if err := inTurns(i, checkout, restore); err != nil {
		return s, err
	}
	copyDir, err := r.sh("--remote", "a", "path", "bench.files")
	if err != nil {
		return s, err
	}
	want, err := statTree(sub)
	if err != nil {
		return s, err
	}
	return s, checkTree("the checked-out branch", copyDir, want)
}

// generateSmall writes files files of 0–4 KiB under root, deterministic,
// in directories nested like a source tree (top/module/package, some
// deeper), about 40 files a directory; half of the files are text-like,
// half random. It returns the bytes written.
func generateSmall(root string, files int) (int64, error) {
	rng := rand.New(rand.NewSource(500))
	words := []string{"func", "return", "if err != nil {", "}", "package", "import", "struct", "int64", "string", "\n", "\t", "// ", "ctx"}
	var total int64
	buf := make([]byte, 4<<10)
	var text bytes.Buffer
	for n := 0; n < files; n++ {
		d := n / 40
		p := filepath.Join(root, fmt.Sprintf("src%02d", d%25), fmt.Sprintf("mod%03d", d/25%40), fmt.Sprintf("pkg%03d", d/1000))
		if d%7 == 3 {
			p = filepath.Join(p, "internal", fmt.Sprintf("sub%d", d%3))
		}
		if n%40 == 0 {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return total, err
			}
		}
		size := rng.Intn(4<<10 + 1)
		b := buf[:size]
		if n%2 == 0 {
			rng.Read(b)
		} else {
			text.Reset()
			for text.Len() < size {
				text.WriteString(words[rng.Intn(len(words))])
				text.WriteByte(' ')
			}
			copy(b, text.Bytes())
		}
		if err := os.WriteFile(filepath.Join(p, fmt.Sprintf("f%06d.go", n)), b, 0o644); err != nil {
			return total, err
		}
		total += int64(size)
	}
	return total, nil
}

// changeSmall rewrites 1% of the files under root with new contents of
// 0–4 KiB, spread over the tree.
func changeSmall(root string, seed int64) error {
	all, err := regularFiles(root)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewSource(seed + 11))
	buf := make([]byte, 4<<10)
	for k := 0; k < len(all)/100; k++ {
		p := all[rng.Intn(len(all))]
		b := buf[:rng.Intn(len(buf)+1)]
		rng.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
