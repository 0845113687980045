package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/bucket"
	"github.com/dotmesh-io/dotmesh/bucket/s3"
	"github.com/dotmesh-io/dotmesh/bucket/s3test"
)

// The s3 section: dm against restic 0.14, both writing encrypted to one
// SeaweedFS S3 server on loopback (bucket/s3test's, a fresh one per run,
// a fresh bucket per tool in it), side by side in one run:
//
//   - first push of a -s3-size tree (generate's mix: many small files,
//     some medium, a few large; half random, half text): `dm push` from a
//     files-backend node to a bucket remote (the dot committed first, not
//     timed) against `restic backup` of the same directory;
//   - clone of that dot onto a fresh node against `restic restore` into an
//     empty directory, with an empty cache as on a fresh machine, each
//     on warmed memory (warmPages);
//   - incremental push after a 1% change (in place, appended, new files):
//     the bytes each bucket grew by (object sizes listed through the S3
//     API, before and after) and the time;
//   - the peak memory (VmHWM) of the node during the first push (it is
//     restarted after the commit, so the commit's peak does not count),
//     and restic's (its VmHWM, polled) for reference.
//
// Which tool goes first alternates between runs; ratios are taken within
// a run and their median reported. Beside wall times it reports the CPU
// time of each side and of the server, steadier on a shared machine.

// s3Password is both tools' repository password (dm's from
// DOTMESH_REMOTE_PASSWORD, restic's from RESTIC_PASSWORD).
const s3Password = "dotmesh-bench-s3-password"

// s3Measure is one timed operation of one tool.
type s3Measure struct {
	wall time.Duration
	// cpu is the user and system time the operation used (the node's,
	// or restic's): on a shared machine steadier than wall time.
	cpu time.Duration
	// server is the S3 server's CPU time meanwhile.
	server time.Duration
	// peak is the process's peak resident memory in bytes: restic's for
	// each command, the node's since it started (the pushing node is
	// restarted before the first push, the cloning node is fresh).
	peak int64
}

// s3Sample is one run.
type s3Sample struct {
	dmFirst, resticFirst             s3Measure
	dmFirstBucket, resticFirstBucket objects // the bucket after the first push
	dmClone, resticRestore           s3Measure
	dmIncr, resticIncr               s3Measure
	dmIncrAdded, resticIncrAdded     objects // its growth by the incremental push
}

func runS3(dm string, size int64, runs int, keep bool) error {
	if err := needRestic(); err != nil {
		return err
	}
	if _, err := s3test.WeedPath(); err != nil {
		return skipped{err.Error()}
	}
	if runs < 1 {
		runs = 1
	}
	work, err := os.MkdirTemp("", "dotmesh-bench-s3-")
	if err != nil {
		return err
	}
	defer func() {
		if keep {
			fmt.Printf("kept %s\n", work)
		} else {
			os.RemoveAll(work)
		}
	}()
	fmt.Printf("generating a %s tree of mixed file sizes...\n", human(size))
	tree := filepath.Join(work, "tree")
	nfiles, err := generate(tree, size)
	if err != nil {
		return err
	}
	where := "in " + os.TempDir()
	if d := serverDir(size); d != "" {
		where = "in memory (" + d + ")"
	}
	fmt.Printf("%d files; %d runs against restic on a local SeaweedFS S3 server keeping its data %s; medians of per-run ratios below\n\n", nfiles, runs, where)
	var samples []s3Sample
	for i := range runs {
		s, err := s3Run(dm, work, tree, size, i, keep)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		samples = append(samples, s)
		fmt.Printf("run %d: first push dm %v, restic %v; clone dm %v, restore %v; 1%% change dm %s in %v, restic %s in %v; peak memory during the push dm node %s, restic %s\n",
			i+1, ms(s.dmFirst.wall), ms(s.resticFirst.wall), ms(s.dmClone.wall), ms(s.resticRestore.wall),
			human(s.dmIncrAdded.bytes), ms(s.dmIncr.wall), human(s.resticIncrAdded.bytes), ms(s.resticIncr.wall),
			mb(s.dmFirst.peak), mb(s.resticFirst.peak))
	}
	return s3Report(samples)
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func mb(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/1e6) }

// s3PeakGoal is the most the node may hold in memory during a push.
const s3PeakGoal = 200e6

func s3Report(samples []s3Sample) error {
	med := func(f func(s3Sample) float64) float64 {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = f(s)
		}
		return medianF(v)
	}
	size := func(f func(s3Sample) objects) string {
		return fmt.Sprintf("%s in %.0f objects", human(int64(med(func(s s3Sample) float64 { return float64(f(s).bytes) }))),
			med(func(s s3Sample) float64 { return float64(f(s).n) }))
	}
	// line prints the medians of a dm and a restic measure.
	line := func(what string, dm, restic func(s3Sample) s3Measure, extra string) {
		secs := func(f func(s3Sample) s3Measure, g func(s3Measure) time.Duration) string {
			return fmt.Sprintf("%.2f s", med(func(s s3Sample) float64 { return g(f(s)).Seconds() }))
		}
		wall := func(m s3Measure) time.Duration { return m.wall }
		cpu := func(m s3Measure) time.Duration { return m.cpu }
		peak := func(f func(s3Sample) s3Measure, who string) string {
			p := int64(med(func(s s3Sample) float64 { return float64(f(s).peak) }))
			if p == 0 {
				return ""
			}
			return ", " + who + "peak " + mb(p)
		}
		server := func(m s3Measure) time.Duration { return m.server }
		fmt.Printf("  %-12s dm %s (CPU %s%s; server CPU %s), restic %s (CPU %s%s; server CPU %s)%s\n", what,
			secs(dm, wall), secs(dm, cpu), peak(dm, "node "), secs(dm, server),
			secs(restic, wall), secs(restic, cpu), peak(restic, ""), secs(restic, server), extra)
	}
	fmt.Printf("\nmedians of %d runs (wall time; CPU time and peak resident memory of the node or of restic):\n", len(samples))
	line("first push:", func(s s3Sample) s3Measure { return s.dmFirst }, func(s s3Sample) s3Measure { return s.resticFirst },
		fmt.Sprintf("; buckets dm %s, restic %s", size(func(s s3Sample) objects { return s.dmFirstBucket }), size(func(s s3Sample) objects { return s.resticFirstBucket })))
	line("clone:", func(s s3Sample) s3Measure { return s.dmClone }, func(s s3Sample) s3Measure { return s.resticRestore }, "")
	line("1% change:", func(s s3Sample) s3Measure { return s.dmIncr }, func(s s3Sample) s3Measure { return s.resticIncr },
		fmt.Sprintf("; uploaded dm %s, restic %s", size(func(s s3Sample) objects { return s.dmIncrAdded }), size(func(s s3Sample) objects { return s.resticIncrAdded })))
	cpu := func(dm, restic func(s3Sample) s3Measure) string {
		return fmt.Sprintf("%.2f", med(func(s s3Sample) float64 {
			return (dm(s).cpu + dm(s).server).Seconds() / (restic(s).cpu + restic(s).server).Seconds()
		}))
	}
	fmt.Printf("  CPU time (the tool's and the server's) dm / restic, steadier than wall time on a busy machine: first push %s, clone %s, 1%% change %s\n",
		cpu(func(s s3Sample) s3Measure { return s.dmFirst }, func(s s3Sample) s3Measure { return s.resticFirst }),
		cpu(func(s s3Sample) s3Measure { return s.dmClone }, func(s s3Sample) s3Measure { return s.resticRestore }),
		cpu(func(s s3Sample) s3Measure { return s.dmIncr }, func(s s3Sample) s3Measure { return s.resticIncr }))
	v := newVerdicts("s3")
	r := med(func(s s3Sample) float64 { return s.dmFirst.wall.Seconds() / s.resticFirst.wall.Seconds() })
	v.row("first push: time dm push / restic backup", r, "<= 0.8", r <= 0.8)
	r = med(func(s s3Sample) float64 { return float64(s.dmIncrAdded.bytes) / float64(s.resticIncrAdded.bytes) })
	v.row("1% change: bytes uploaded dm / restic added", r, "<= 1.1", r <= 1.1)
	r = med(func(s s3Sample) float64 { return s.dmIncr.wall.Seconds() / s.resticIncr.wall.Seconds() })
	v.row("1% change: time dm push / restic backup", r, "<= 0.8", r <= 0.8)
	r = med(func(s s3Sample) float64 { return s.dmClone.wall.Seconds() / s.resticRestore.wall.Seconds() })
	v.row("clone: time dm clone / restic restore", r, "<= 0.8", r <= 0.8)
	r = med(func(s s3Sample) float64 { return float64(s.dmFirst.peak) / s3PeakGoal })
	v.row("push: dm node peak memory / 200 MB", r, "< 1", r < 1)
	return v.flush()
}

// s3Rig is one run's server, buckets, nodes and tools: the pushRig's a
// is the node that pushes, its b the fresh node that clones.
type s3Rig struct {
	pushRig
	srv         *s3test.Server
	resticRepo  string
	resticEnv   []string
	dmStore     *s3.Store
	resticStore *s3.Store
	sub         string // the dot's working directory on node a
}

func (r *s3Rig) close() {
	r.stop()
	for _, st := range []*s3.Store{r.dmStore, r.resticStore} {
		if st != nil {
			st.Close()
		}
	}
	if r.srv != nil {
		r.srv.Close() // kills weed and removes its data: the buckets
	}
}

// restic runs restic with the run's repository and measures it.
func (r *s3Rig) restic(env []string, args ...string) (s3Measure, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "restic", append([]string{"--repo", r.resticRepo}, args...)...)
	cmd.Env = env
	var m s3Measure
	var err error
	stop, err := r.serverCPU(&m)
	if err != nil {
		return m, err
	}
	m.wall, m.peak, err = timedPeak(cmd)
	if cmd.ProcessState != nil {
		m.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if serr := stop(); err == nil {
		err = serr
	}
	return m, err
}

// serverCPU starts counting the S3 server's CPU time into m.server;
// stop ends it.
func (r *s3Rig) serverCPU(m *s3Measure) (stop func() error, err error) {
	pid := r.srv.PID()
	before, err := cpuTime(pid)
	if err != nil {
		return nil, fmt.Errorf("the S3 server: %w", err)
	}
	return func() error {
		after, err := cpuTime(pid)
		if err != nil {
			return fmt.Errorf("the S3 server: %w", err)
		}
		m.server = after - before
		return nil
	}, nil
}

// timedPeak runs cmd and returns its wall time and its peak resident
// memory, VmHWM read every 20 ms while it runs. Not its rusage maxrss:
// Go starts a child sharing this process's memory until exec, and Linux
// counts that memory into the child's maxrss.
func timedPeak(cmd *exec.Cmd) (time.Duration, int64, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if n, err := vmHWM(cmd.Process.Pid); err == nil {
			peak = max(peak, n)
		}
		select {
		case err := <-done:
			d := time.Since(start)
			if err != nil {
				return d, peak, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(out.String()))
			}
			return d, peak, nil
		case <-tick.C:
		}
	}
}

// addNode starts node name and adds it as a remote of the client config.
func (r *s3Rig) addNode(name string) (*benchNode, error) {
	n, err := startBenchNode(r.dm, r.work, name, "127.0.0.1", logLevelArgs()...)
	if err != nil {
		return nil, err
	}
	return n, r.addRemote(n)
}

// setupS3Rig starts the server, makes both buckets and repositories, a
// node with the tree committed in dot bench, and restic's repository.
func setupS3Rig(dm, work, tree string, size int64, i int) (r *s3Rig, err error) {
	r = &s3Rig{pushRig: pushRig{dm: dm, work: filepath.Join(work, fmt.Sprint("run", i+1))}}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if err := os.MkdirAll(r.work, 0o755); err != nil {
		return r, err
	}
	if r.srv, err = s3test.Launch(serverDir(size)); err != nil {
		return r, err
	}
	ctx := context.Background()
	dmBucket, resticBucket := fmt.Sprintf("dm-bench-%d", i+1), fmt.Sprintf("restic-bench-%d", i+1)
	for _, b := range []struct {
		name string
		st   **s3.Store
	}{{dmBucket, &r.dmStore}, {resticBucket, &r.resticStore}} {
		if *b.st, err = s3.Open(ctx, b.name, "", r.srv.Config()); err != nil {
			return r, err
		}
		if err := (*b.st).CreateBucket(ctx); err != nil {
			return r, err
		}
	}
	cfg := r.srv.Config()
	creds := []string{"AWS_ACCESS_KEY_ID=" + cfg.AccessKey, "AWS_SECRET_ACCESS_KEY=" + cfg.SecretKey}
	r.env = append(os.Environ(), creds...)
	r.env = append(r.env, "DOTMESH_CONFIG="+filepath.Join(r.work, "config"), "DOTMESH_REMOTE_PASSWORD="+s3Password)
	r.resticEnv = append(os.Environ(), creds...)
	r.resticEnv = append(r.resticEnv, "RESTIC_PASSWORD="+s3Password, "RESTIC_CACHE_DIR="+filepath.Join(r.work, "restic-cache"))
	r.resticRepo = "s3:" + r.srv.Endpoint + "/" + resticBucket

	if r.a, err = r.addNode("a"); err != nil {
		return r, err
	}
	if _, err := r.sh("remote", "add", "s3", "s3://"+dmBucket, "--endpoint", r.srv.Endpoint); err != nil {
		return r, err
	}
	if _, err := r.sh("--remote", "a", "init", "bench"); err != nil {
		return r, err
	}
	if r.sub, err = r.sh("--remote", "a", "path", "bench.data"); err != nil {
		return r, err
	}
	// Hard links would share inodes with the source; copy for real.
	if out, err := exec.Command("cp", "-a", tree+"/.", r.sub).CombinedOutput(); err != nil {
		return r, fmt.Errorf("copying the tree: %v: %s", err, out)
	}
	syscall.Sync()
	if _, err := r.sh("--remote", "a", "commit", "--dot", "bench", "-m", "first"); err != nil {
		return r, err
	}
	if _, err := r.restic(r.resticEnv, "init"); err != nil {
		return r, err
	}
	// A fresh node process: its VmHWM is then the push's peak, not the
	// commit's.
	r.a.stop()
	if err := r.a.start(); err != nil {
		return r, err
	}
	syscall.Sync()
	return r, nil
}

// serverDir is where the S3 server keeps its data: in memory (/dev/shm)
// when it has room for both buckets of a tree of size bytes twice over,
// else the temporary directory. An S3 server is another machine: its
// writes should not queue behind the client's on one disk.
func serverDir(size int64) string {
	var st syscall.Statfs_t
	if syscall.Statfs("/dev/shm", &st) == nil && int64(st.Bavail)*st.Bsize > 4*size {
		return "/dev/shm"
	}
	return ""
}

// dmTransfer runs `dm --remote NODE OP s3 bench --json` on node n, checks
// that it moved one commit and measures it. With DOTMESH_BENCH_PERF=DIR,
// `perf record -g` samples the node meanwhile into DIR/LABEL.perf.data
// (where the time goes: perf report -i FILE). With DOTMESH_BENCH_STRACE=DIR,
// strace writes the node's file and network syscalls, each with its time
// of day and duration, into DIR/LABEL.strace: the time line of a
// transfer and where it waits off the CPU (fsync, reads from the server).
func (r *s3Rig) dmTransfer(n *benchNode, op, label string) (m s3Measure, err error) {
	pid := n.cmd.Process.Pid
	if dir := os.Getenv("DOTMESH_BENCH_PERF"); dir != "" {
		stop, err := perfRecord(pid, filepath.Join(dir, label+".perf.data"))
		if err != nil {
			return m, err
		}
		defer stop()
	}
	if dir := os.Getenv("DOTMESH_BENCH_STRACE"); dir != "" {
		stop, err := straceRecord(pid, filepath.Join(dir, label+".strace"))
		if err != nil {
			return m, err
		}
		defer stop()
	}
	cpu0, err := cpuTime(pid)
	if err != nil {
		return m, err
	}
	stop, err := r.serverCPU(&m)
	if err != nil {
		return m, err
	}
	start := time.Now()
	out, err := r.sh("--remote", n.name, op, "s3", "bench", "--json")
	m.wall = time.Since(start)
	if err != nil {
		return m, err
	}
	if err := stop(); err != nil {
		return m, err
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return m, err
	}
	m.cpu = cpu1 - cpu0
	if m.peak, err = vmHWM(pid); err != nil {
		return m, err
	}
	var res pushResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return m, fmt.Errorf("dm %s --json printed %q: %v", op, out, err)
	}
	if res.UpToDate || res.Commits != 1 {
		return m, fmt.Errorf("dm %s moved %d commit(s) (up to date: %v); want 1", op, res.Commits, res.UpToDate)
	}
	return m, nil
}

// perfRecord samples process pid's stacks with perf until stop.
func perfRecord(pid int, out string) (stop func(), err error) {
	return attachTool(out, "DOTMESH_BENCH_PERF needs perf (linux-perf)",
		"perf", "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", out)
}

// straceRecord traces process pid's file and network syscalls with strace
// until stop.
func straceRecord(pid int, out string) (stop func(), err error) {
	return attachTool(out, "DOTMESH_BENCH_STRACE needs strace", "strace", "-f", "-qq", "-ttt", "-T", "-e",
		"trace=openat,close,read,write,pread64,pwrite64,pwritev,fsync,fdatasync,sync_file_range,syncfs,renameat,unlinkat,mkdirat,connect,sendto,recvfrom,ftruncate,fchmodat,utimensat",
		"-o", out, "-p", strconv.Itoa(pid))
}

// attachTool runs a tool that attaches to a process and writes to out,
// until stop interrupts it; missing names what to install.
func attachTool(out, missing, name string, args ...string) (stop func(), err error) {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	var msgs bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &msgs, &msgs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", missing, err)
	}
	time.Sleep(300 * time.Millisecond) // let it attach
	return func() {
		cmd.Process.Signal(syscall.SIGINT) // only the tool we started
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
			err = nil // ended by that interrupt
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s into %s: %v: %s\n", name, out, err, strings.TrimSpace(msgs.String()))
		}
	}, nil
}

// warmPages writes n bytes into a file in dir and removes it, so that
// the timed step after it writes its files into pages the guest just
// freed. On a virtual machine that hands free memory back to its host
// (virtio-balloon free page reporting, as here), a page-cache page
// written for the first time since faults on the host: writing 3 GiB of
// new file here took 1.6, 4.5 and 4.3 s of system time per GiB, a
// rewrite of cached pages 0.28 s. A 1 GiB dm clone writes about 1.6 GiB
// (tree and store), and the tool that ran second wrote into the pages
// the first one's removed output had freed: dm's clone cost 6.4-8.5 s
// of CPU going first (copy_folio_from_iter_atomic 46-55%) and ~4 s
// going second. With warmPages it cost 3.5 and 3.6 s either way (the
// copy 8-10%).
func warmPages(dir string, n int64) error {
	f, err := os.CreateTemp(dir, "warm-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	for ; n > 0; n -= int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			return fmt.Errorf("warming the page cache: %w", err)
		}
	}
	return nil
}

// inTurns runs steps in order, or reversed on odd runs.
func inTurns(i int, steps ...func() error) error {
	if i%2 == 1 {
		for l, h := 0, len(steps)-1; l < h; l, h = l+1, h-1 {
			steps[l], steps[h] = steps[h], steps[l]
		}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func s3Run(dm, work, tree string, size int64, i int, keep bool) (s s3Sample, err error) {
	r, err := setupS3Rig(dm, work, tree, size, i)
	if err != nil {
		return s, err
	}
	defer func() {
		r.close()
		if !keep {
			os.RemoveAll(r.work)
		}
	}()
	ctx := context.Background()
	want, err := statTree(tree)
	if err != nil {
		return s, err
	}

	// First push.
	err = inTurns(i,
		func() error {
			var err error
			if s.dmFirst, err = r.dmTransfer(r.a, "push", fmt.Sprintf("run%d-push", i+1)); err != nil {
				return err
			}
			s.dmFirstBucket, err = bucketSize(ctx, r.dmStore)
			return err
		},
		func() error {
			var err error
			if s.resticFirst, err = r.restic(r.resticEnv, "backup", "--quiet", r.sub); err != nil {
				return err
			}
			s.resticFirstBucket, err = bucketSize(ctx, r.resticStore)
			return err
		})
	if err != nil {
		return s, err
	}
	syscall.Sync()

	// Clone onto a fresh node; restore into an empty directory with an
	// empty cache. Each result is checked against the tree (not timed).
	// Each starts on warmed memory (warmPages), so that which tool goes
	// first does not decide which one pays the host's page faults.
	err = inTurns(i,
		func() error {
			if err := warmPages(r.work, 2*size); err != nil {
				return err
			}
			var err error
			if r.b, err = r.addNode("c"); err != nil {
				return err
			}
			if s.dmClone, err = r.dmTransfer(r.b, "clone", fmt.Sprintf("run%d-clone", i+1)); err != nil {
				return err
			}
			dir, err := r.sh("--remote", "c", "path", "bench.data")
			if err != nil {
				return err
			}
			if err := checkTree("dm clone", dir, want); err != nil {
				return err
			}
			r.b.stop()
			return os.RemoveAll(r.b.data) // room for the rest
		},
		func() error {
			if err := warmPages(r.work, 2*size); err != nil {
				return err
			}
			target := filepath.Join(r.work, "restore")
			env := append(append([]string(nil), r.resticEnv...), "RESTIC_CACHE_DIR="+filepath.Join(r.work, "restic-restore-cache"))
			var err error
			if s.resticRestore, err = r.restic(env, "restore", "latest", "--target", target); err != nil {
				return err
			}
			// restic restores the backed-up path under the target.
			if err := checkTree("restic restore", filepath.Join(target, r.sub), want); err != nil {
				return err
			}
			return os.RemoveAll(target)
		})
	if err != nil {
		return s, err
	}

	// A 1% change, committed (not timed), then both push it.
	if err := changeMixed(r.sub, size, int64(i)); err != nil {
		return s, err
	}
	syscall.Sync()
	if _, err := r.sh("--remote", "a", "commit", "--dot", "bench", "-m", "1% changed"); err != nil {
		return s, err
	}
	syscall.Sync()
	err = inTurns(i,
		func() error {
			before, err := bucketSize(ctx, r.dmStore)
			if err != nil {
				return err
			}
			if s.dmIncr, err = r.dmTransfer(r.a, "push", fmt.Sprintf("run%d-push-1pct", i+1)); err != nil {
				return err
			}
			s.dmIncr.peak = 0 // the node's since the first push: not this one's
			after, err := bucketSize(ctx, r.dmStore)
			s.dmIncrAdded = objects{after.bytes - before.bytes, after.n - before.n}
			return err
		},
		func() error {
			before, err := bucketSize(ctx, r.resticStore)
			if err != nil {
				return err
			}
			if s.resticIncr, err = r.restic(r.resticEnv, "backup", "--quiet", r.sub); err != nil {
				return err
			}
			after, err := bucketSize(ctx, r.resticStore)
			s.resticIncrAdded = objects{after.bytes - before.bytes, after.n - before.n}
			return err
		})
	return s, err
}

// objects counts objects and their bytes.
type objects struct{ bytes, n int64 }

// bucketSize counts the objects in st and their bytes, as the S3 API
// lists them.
func bucketSize(ctx context.Context, st bucket.Store) (objects, error) {
	var o objects
	err := st.List(ctx, "", func(oi bucket.ObjectInfo) error {
		o.bytes += oi.Size
		o.n++
		return nil
	})
	return o, err
}

// vmHWM is the peak resident memory of process pid in bytes.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM line", pid)
}

// treeStats is what checkTree compares: regular files and their bytes.
type treeStats struct{ files, bytes int64 }

func statTree(root string) (treeStats, error) {
	var t treeStats
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		t.files++
		t.bytes += fi.Size()
		return nil
	})
	return t, err
}

// checkTree fails when dir does not hold as many files and bytes as want.
func checkTree(what, dir string, want treeStats) error {
	got, err := statTree(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if got != want {
		return fmt.Errorf("%s gave %d files of %d bytes in %s; the tree has %d files of %d bytes", what, got.files, got.bytes, dir, want.files, want.bytes)
	}
	return nil
}

// changeMixed changes about 1% of a tree of size bytes as an application
// does: half of it in place (changeOnePercent's 256 KiB runs), a quarter
// appended to existing files, a quarter as a few new files (half random,
// half text-like).
func changeMixed(root string, size, seed int64) error {
	if err := changeOnePercent(root, size/2, seed); err != nil {
		return err
	}
	files, err := regularFiles(root)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no files to change in %s", root)
	}
	rng := mrand.New(mrand.NewSource(seed + 11))
	for budget := size / 400; budget > 0; {
		buf := make([]byte, min(budget, 4<<10+rng.Int63n(256<<10)))
		rng.Read(buf)
		f, err := os.OpenFile(files[rng.Intn(len(files))], os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		budget -= int64(len(buf))
	}
	dir := filepath.Join(root, fmt.Sprintf("new%d", seed))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	const nnew = 8
	each := max(size/400/nnew, 1)
	for k := range nnew {
		buf := make([]byte, each)
		if k%2 == 0 {
			rng.Read(buf)
		} else {
			for j := range buf {
				buf[j] = "abcdefghij klmnop\n"[rng.Intn(18)]
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("added%d.dat", k)), buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}
