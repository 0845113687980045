package main

// The gc section: a -gc-size tree (generate's mix) committed once and then
// after each of five rewrites of 5% of its bytes (changeBytes: 256 KiB
// runs in place), and backed up by restic in the same six states. Then,
// in turns first, `dm gc --keep 1` against `restic forget --keep-last 1
// --prune`, and `dm verify` against `restic check --read-data`: their wall
// times, the peak resident memory of the node (restarted after the
// commits, so theirs does not count) and of restic, and the bytes each
// frees. Issue 22's goals: gc time and peak memory <= restic's; dm frees
// all garbage, so its store after gc is no larger than restic's repository.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// gcSample is one run of the gc section.
type gcSample struct {
	dmGC, resticGC         time.Duration
	dmGCPeak, resticGCPeak int64
	dmFreed, resticFreed   int64
	dmAfter, dmFirst       int64 // store bytes after gc, and after the first commit
	resticAfter            int64
	dmVerify, resticCheck  time.Duration
	dmVerifyPeak, rcPeak   int64
}

func runGC(dm string, size int64, runs int, keep bool) error {
	if err := needRestic(); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "dotmesh-bench-gc-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	var samples []gcSample
	for i := 0; i < runs; i++ {
		s, err := gcRun(dm, work, size, i)
		if err != nil {
			return err
		}
		samples = append(samples, s)
		fmt.Printf("run %d: gc dm %v (node peak %s, freed %s, store %s after vs %s first commit), restic prune %v (peak %s, freed %s, repo %s after); verify dm %v (node peak %s), restic check --read-data %v (peak %s)\n",
			i+1, s.dmGC.Round(time.Millisecond), mb(s.dmGCPeak), human(s.dmFreed), human(s.dmAfter), human(s.dmFirst),
			s.resticGC.Round(time.Millisecond), mb(s.resticGCPeak), human(s.resticFreed), human(s.resticAfter),
			s.dmVerify.Round(time.Millisecond), mb(s.dmVerifyPeak), s.resticCheck.Round(time.Millisecond), mb(s.rcPeak))
	}
	med := func(f func(gcSample) float64) float64 {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = f(s)
		}
		return medianF(v)
	}
	v := newVerdicts("gc")
	r := med(func(s gcSample) float64 { return s.dmGC.Seconds() / s.resticGC.Seconds() })
	v.row(fmt.Sprintf("%s: dm gc --keep 1 time / restic forget --prune time", human(size)), r, "<= 1", r <= 1)
	r = med(func(s gcSample) float64 { return float64(s.dmGCPeak) / float64(s.resticGCPeak) })
	v.row("gc: dm node peak memory / restic's", r, "<= 1", r <= 1)
	// All garbage freed: restic's prune leaves some in packs under its
	// threshold, so dm's store ends no larger than its repository.
	r = med(func(s gcSample) float64 { return float64(s.dmAfter) / float64(s.resticAfter) })
	v.row("gc: dm store after / restic repo after", r, "<= 1", r <= 1)
	r = med(func(s gcSample) float64 { return s.dmVerify.Seconds() / s.resticCheck.Seconds() })
	v.row("dm verify time / restic check --read-data time", r, "<= 1", r <= 1)
	return v.flush()
}

// gcRun makes the six states on a fresh node and a fresh restic
// repository, then times both collections and both checks.
func gcRun(dm, work string, size int64, i int) (s gcSample, err error) {
	dir := filepath.Join(work, fmt.Sprint("run", i+1))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, err
	}
	r := &pushRig{dm: dm, work: dir, env: append(os.Environ(), "DOTMESH_CONFIG="+filepath.Join(dir, "config"))}
	defer r.stop()
	if r.a, err = startBenchNode(dm, dir, "a", "127.0.0.1"); err != nil {
		return s, err
	}
	if err := r.addRemote(r.a); err != nil {
		return s, err
	}
	if _, err := r.sh("--remote", "a", "init", "bench"); err != nil {
		return s, err
	}
	sub, err := r.sh("--remote", "a", "path", "bench.data")
	if err != nil {
		return s, err
	}
	fmt.Printf("generating a %s tree of mixed file sizes...\n", human(size))
	if _, err := generate(sub, size); err != nil {
		return s, err
	}
	repo := filepath.Join(dir, "restic")
	renv := append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_CACHE_DIR="+filepath.Join(dir, "restic-cache"))
	restic := func(args ...string) *exec.Cmd {
		cmd := exec.Command("restic", append([]string{"--repo", repo}, args...)...)
		cmd.Env = renv
		return cmd
	}
	if out, err := restic("init").CombinedOutput(); err != nil {
		return s, fmt.Errorf("restic init: %v: %s", err, out)
	}
	store := filepath.Join(r.a.data, "dump", "store")
	start := time.Now()
	for k := 0; k < 6; k++ {
		if k > 0 {
			if err := changeBytes(sub, size*5/100, int64(100*i+k)); err != nil {
				return s, err
			}
		}
		if _, err := r.sh("--remote", "a", "commit", "--dot", "bench", "-m", fmt.Sprint("state ", k)); err != nil {
			return s, err
		}
		if k == 0 {
			syscall.Sync()
			if s.dmFirst, err = du(store); err != nil {
				return s, err
			}
		}
		if out, err := restic("backup", "--quiet", sub).CombinedOutput(); err != nil {
			return s, fmt.Errorf("restic backup: %v: %s", err, out)
		}
	}
	fmt.Printf("six states committed and backed up in %v\n", time.Since(start).Round(time.Second))
	// A fresh node: its peak memory is then the collection's (and the
	// store's open), not the commits'.
	r.a.stop()
	if err := r.a.start(); err != nil {
		return s, err
	}
	// timedNode runs dm args and returns its time and the node's peak.
	timedNode := func(args ...string) (time.Duration, int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, dm, append([]string{"--remote", "a"}, args...)...)
		cmd.Env = r.env
		syscall.Sync()
		stop := make(chan struct{})
		peak := make(chan int64, 1)
		pid := r.a.cmd.Process.Pid
		go func() {
			var p int64
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				if n, err := vmHWM(pid); err == nil {
					p = max(p, n)
				}
				select {
				case <-stop:
					peak <- p
					return
				case <-tick.C:
				}
			}
		}()
		d, out, err := timedCmd(cmd)
		close(stop)
		p := <-peak
		if err != nil {
			return d, p, fmt.Errorf("dm %v: %v: %s%s", args, err, out, r.logs())
		}
		return d, p, nil
	}
	dmSide := func() error {
		before, err := du(store)
		if err != nil {
			return err
		}
		if s.dmGC, s.dmGCPeak, err = timedNode("gc", "--keep", "1"); err != nil {
			return err
		}
		if s.dmAfter, err = du(store); err != nil {
			return err
		}
		s.dmFreed = before - s.dmAfter
		s.dmVerify, s.dmVerifyPeak, err = timedNode("verify")
		return err
	}
	resticSide := func() error {
		before, err := du(repo)
		if err != nil {
			return err
		}
		syscall.Sync()
		if s.resticGC, s.resticGCPeak, err = timedPeak(restic("forget", "--keep-last", "1", "--prune")); err != nil {
			return err
		}
		if s.resticAfter, err = du(repo); err != nil {
			return err
		}
		s.resticFreed = before - s.resticAfter
		syscall.Sync()
		s.resticCheck, s.rcPeak, err = timedPeak(restic("check", "--read-data"))
		return err
	}
	return s, inTurns(i, dmSide, resticSide)
}
