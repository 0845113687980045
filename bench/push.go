package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The push section: an incremental `dm push` of a 1% change to a dot of
// -push-size (1 GiB) between two `dm serve` nodes on 127.0.0.1 and
// 127.0.0.2, against the raw tool doing the same job, side by side in one
// run:
//
//   - zfs→zfs (each node its own file-backed pool, made by the backend):
//     the bytes dm sends against `zfs send -i` of the same two snapshots
//     (target under 1.1x), and the wall time of `dm push` against a local
//     `zfs send -i | zfs receive` pipe into a scratch pool (at most 1.2x,
//     issue 22's goal);
//   - files→files (the dump backend): the bytes and time of `dm push`
//     against rsync of the same change (under 1.1x, at most 1.5x).
//
// The dot holds -push-size bytes of incompressible data in 64 MiB files. It
// is committed and pushed once (not timed); then each of -push-runs runs
// overwrites 1% of it in place, spread out: 256 KiB runs at random,
// unaligned offsets of random files (a database changes pages here and
// there), commits (not timed) and times the push and the reference, in
// turns first; on zfs each after the nodes' work behind their answers has
// ended (settle). Ratios are taken within a run and their median reported.
//
// zfs-fuse wedges under concurrent use, so nothing here runs two zfs jobs
// at once beyond the one send|receive pair a push itself is.

// pushSample is one run of one backend.
type pushSample struct {
	dmTime, refTime   time.Duration
	dmBytes, refBytes int64
	dmServer          time.Duration // duration_ns of dm push's JSON summary
	// CPU time (zfs only; zero elsewhere): of the dm process and both
	// nodes, and of the two zfs commands; fuse is what the zfs-fuse
	// daemon, which does both sides' sending and receiving, ran meanwhile
	// (shared: other users' zfs work counts too).
	dmCPU, dmFuse, refCPU, refFuse time.Duration
}

// pushRig is two nodes and a client config knowing both as remotes a
// (the sender, which dm talks to) and b.
type pushRig struct {
	dm, work string
	env      []string
	a, b     *benchNode
	lastCPU  time.Duration // of the last command sh ran
}

// nodesCPU is the CPU time both nodes have used so far.
func (r *pushRig) nodesCPU() time.Duration {
	a, _ := cpuTime(r.a.cmd.Process.Pid) // 0 for a node gone: its failure shows elsewhere
	b, _ := cpuTime(r.b.cmd.Process.Pid)
	return a + b
}

// cmdTimeout bounds every command, so that a wedged zfs-fuse fails the
// section instead of hanging it.
const cmdTimeout = 15 * time.Minute

func (r *pushRig) sh(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.dm, args...)
	cmd.Env = r.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.ProcessState != nil {
		r.lastCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return "", fmt.Errorf("dm %s: %v: %s%s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()), r.logs())
	}
	return strings.TrimSpace(out.String()), nil
}

// logs returns the tails of the nodes' logs, for errors.
func (r *pushRig) logs() string {
	var b strings.Builder
	for _, n := range []*benchNode{r.a, r.b} {
		if n == nil {
			continue
		}
		if l, err := os.ReadFile(filepath.Join(r.work, n.name+".log")); err == nil && len(l) > 0 {
			fmt.Fprintf(&b, "\n  node %s log: %s", n.name, lastLines(string(l)))
		}
	}
	return b.String()
}

// startPushRig starts the two nodes with args and adds them as remotes.
func startPushRig(dm, work string, args func(name string) []string) (*pushRig, error) {
	r := &pushRig{dm: dm, work: work}
	r.env = append(os.Environ(), "DOTMESH_CONFIG="+filepath.Join(work, "config"))
	var err error
	if r.a, err = startBenchNode(dm, work, "a", "127.0.0.1", args("a")...); err != nil {
		return r, err
	}
	if r.b, err = startBenchNode(dm, work, "b", "127.0.0.2", args("b")...); err != nil {
		return r, err
	}
	for _, n := range []*benchNode{r.a, r.b} {
		if err := r.addRemote(n); err != nil {
			return r, err
		}
	}
	return r, nil
}

// addRemote adds node n to the client config as remote n.name.
func (r *pushRig) addRemote(n *benchNode) error {
	env := r.env
	r.env = append(env, "DOTMESH_PASSWORD="+n.key)
	_, err := r.sh("remote", "add", n.name, "admin@"+n.addr)
	r.env = env
	return err
}

func (r *pushRig) stop() {
	for _, n := range []*benchNode{r.b, r.a} {
		if n != nil {
			n.stop() // SIGTERM by PID, SIGKILL after 30s
		}
	}
}

// fill makes dot bench on a with size bytes in bench.data, commits it
// and pushes it to b; it returns the working directory and the commit.
func (r *pushRig) fill(size int64) (dir, commit string, err error) {
	if _, err := r.sh("--remote", "a", "init", "bench"); err != nil {
		return "", "", err
	}
	if dir, err = r.sh("--remote", "a", "path", "bench.data"); err != nil {
		return "", "", err
	}
	start := time.Now()
	if err := fillUnique(dir, size); err != nil {
		return "", "", err
	}
	syscall.Sync()
	fmt.Printf("  wrote %s in %v\n", human(size), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if commit, err = r.sh("--remote", "a", "-H", "commit", "--dot", "bench", "-m", "filled"); err != nil {
		return "", "", err
	}
	fmt.Printf("  first commit in %v\n", time.Since(start).Round(time.Millisecond))
	d, res, err := r.push()
	if err != nil {
		return "", "", err
	}
	fmt.Printf("  first push: %s in %v\n", human(res.Bytes), d.Round(time.Millisecond))
	return dir, commit, nil
}

// fillUnique writes n bytes of incompressible data into dir, in files of
// at most 64 MiB, no two alike anywhere (fillBytes repeats one buffer, which
// a chunk store would dedupe: its first push would send one file's worth).
func fillUnique(dir string, n int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	buf := make([]byte, 64<<20)
	rng := mrand.New(mrand.NewSource(n + 1))
	for i := 0; n > 0; i++ {
		c := min(n, int64(len(buf)))
		rng.Read(buf[:c])
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob%03d", i)), buf[:c], 0o644); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

type pushResult struct {
	Commits  int           `json:"commits"`
	Bytes    int64         `json:"bytes"`
	Format   string        `json:"format"`
	UpToDate bool          `json:"up_to_date"`
	Duration time.Duration `json:"duration_ns"`
}

// push runs `dm --remote a push b bench --json` and returns its wall time
// and summary.
func (r *pushRig) push() (time.Duration, pushResult, error) {
	var res pushResult
	start := time.Now()
	out, err := r.sh("--remote", "a", "push", "b", "bench", "--json")
	d := time.Since(start)
	if err != nil {
		return d, res, err
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return d, res, fmt.Errorf("dm push --json printed %q: %v", out, err)
	}
	if res.UpToDate || res.Commits != 1 {
		return d, res, fmt.Errorf("dm push sent %d commit(s) (up to date: %v); want 1", res.Commits, res.UpToDate)
	}
	return d, res, nil
}

// change overwrites 1% of the dot in place and commits it (not timed).
func (r *pushRig) change(dir string, size int64, i int) (string, error) {
	if err := changeOnePercent(dir, size, int64(1000+i)); err != nil {
		return "", err
	}
	syscall.Sync()
	c, err := r.sh("--remote", "a", "-H", "commit", "--dot", "bench", "-m", fmt.Sprint("1% changed, run ", i+1))
	syscall.Sync()
	return c, err
}

// timedCmd runs cmd and returns its wall time.
func timedCmd(cmd *exec.Cmd) (time.Duration, []byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, out.Bytes(), fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(out.String()))
	}
	return d, out.Bytes(), nil
}

func runPush(dm string, size int64, runs int, kinds string, keep bool) error {
	if runs < 1 {
		runs = 1
	}
	fmt.Printf("incremental push of a 1%% change (%s spread in 256 KiB runs) to a %s dot; %d runs, medians of per-run ratios\n\n",
		human(size/100), human(size), runs)
	var rows []func(*verdicts)
	ran := false
	for _, part := range []struct {
		kind, name string
		run        func() ([]func(*verdicts), error)
	}{
		{"zfs", "zfs→zfs", func() ([]func(*verdicts), error) { return pushZFS(dm, size, runs, keep) }},
		{"files", "files→files", func() ([]func(*verdicts), error) { return pushFiles(dm, size, runs, keep) }},
		{"zfs-files", "zfs→files (neutral stream)", func() ([]func(*verdicts), error) { return pushZFSFiles(dm, size, runs, keep) }},
	} {
		if !slices.Contains(strings.Split(kinds, ","), part.kind) {
			continue
		}
		fmt.Printf("%s:\n", part.name)
		rs, err := part.run()
		var skip skipped
		switch {
		case errors.As(err, &skip):
			fmt.Printf("  skipped: %s\n\n", skip.why)
			continue
		case err != nil:
			return fmt.Errorf("%s: %w", part.name, err)
		}
		ran = true
		rows = append(rows, rs...)
		fmt.Println()
	}
	if !ran {
		return skipped{"none of the backends in -push-kinds could run (zfs needs zfs-fuse, files needs rsync)"}
	}
	v := newVerdicts("push")
	for _, row := range rows {
		row(v)
	}
	return v.flush()
}

func medianF(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// report prints the medians of the samples and returns the verdict rows.
// The time's target is timeGoal (zfs: issue 22's 1.2x of the local
// pipe).
func report(samples []pushSample, what, refBytes, refTime string, timeGoal float64) []func(*verdicts) {
	var dmT, refT, dmS []time.Duration
	var dmB, refB, rb, rt []float64
	for _, s := range samples {
		dmT, refT, dmS = append(dmT, s.dmTime), append(refT, s.refTime), append(dmS, s.dmServer)
		dmB, refB = append(dmB, float64(s.dmBytes)), append(refB, float64(s.refBytes))
		rb = append(rb, float64(s.dmBytes)/float64(s.refBytes))
		rt = append(rt, s.dmTime.Seconds()/s.refTime.Seconds())
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }
	fmt.Printf("  medians of %d runs: dm push %s sent in %s (server %s); %s %s; %s %s\n", len(samples),
		human(int64(medianF(dmB))), ms(median(dmT)), ms(median(dmS)),
		refBytes, human(int64(medianF(refB))), refTime, ms(median(refT)))
	var dc, df, rc, rf []time.Duration
	for _, s := range samples {
		dc, df, rc, rf = append(dc, s.dmCPU), append(df, s.dmFuse), append(rc, s.refCPU), append(rf, s.refFuse)
	}
	if median(rc) > 0 {
		fmt.Printf("  CPU medians: dm push %s in dm and the nodes + %s in zfs-fuse; %s %s in zfs + %s in zfs-fuse\n",
			ms(median(dc)), ms(median(df)), refTime, ms(median(rc)), ms(median(rf)))
	}
	b, t := medianF(rb), medianF(rt)
	return []func(*verdicts){
		func(v *verdicts) { v.row(what+": bytes dm push / "+refBytes, b, "< 1.1", b < 1.1) },
		func(v *verdicts) {
			v.row(what+": time dm push / "+refTime, t, fmt.Sprintf("<= %g", timeGoal), t <= timeGoal)
		},
	}
}

// --- zfs → zfs ---

func zpoolDestroy(pool string) {
	zpool, err := sbin("zpool")
	if err != nil {
		return
	}
	for range 40 {
		if exec.Command(zpool, "list", pool).Run() != nil {
			return
		}
		if exec.Command(zpool, "destroy", "-f", pool).Run() == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "bench: could not destroy pool %s\n", pool)
}

func pushZFS(dm string, size int64, runs int, keep bool) (rows []func(*verdicts), err error) {
	if err := zfsKind.check(); err != nil {
		return nil, err
	}
	zfs, err := sbin("zfs")
	if err != nil {
		return nil, skipped{err.Error()}
	}
	zpool, err := sbin("zpool")
	if err != nil {
		return nil, skipped{err.Error()}
	}
	work, err := os.MkdirTemp("", "dotmesh-bench-push-zfs-")
	if err != nil {
		return nil, err
	}
	id := randHex(4)
	pools := map[string]string{"a": "dmbpush" + id + "a", "b": "dmbpush" + id + "b"}
	scratch := "dmbpush" + id + "r"
	var rig *pushRig
	defer func() {
		if rig != nil {
			rig.stop()
		}
		// After the nodes have stopped; each one at a time.
		for _, p := range []string{pools["a"], pools["b"], scratch} {
			zpoolDestroy(p)
		}
		if keep {
			fmt.Printf("  kept %s\n", work)
		} else {
			os.RemoveAll(work)
		}
	}()
	poolSize := strconv.FormatInt(2*size+(1<<30), 10)
	fmt.Printf("  starting two zfs nodes (pools %s, %s)...\n", pools["a"], pools["b"])
	rig, err = startPushRig(dm, work, func(name string) []string {
		return append([]string{"--backend", "zfs", "--zfs-pool", pools[name], "--pool-size", poolSize}, logLevelArgs()...)
	})
	if err != nil {
		return nil, err
	}
	dir, prev, err := rig.fill(size)
	if err != nil {
		return nil, err
	}

	// The reference receives into a scratch pool of its own on the same
	// daemon, as dm's push receives into b's pool.
	img := filepath.Join(work, "scratch.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Truncate(img, 2*size+(1<<30)); err != nil {
		return nil, err
	}
	if out, err := exec.Command(zpool, "create", "-o", "cachefile=none", "-m", "none", scratch, img).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("zpool create %s: %v: %s", scratch, err, out)
	}
	target := scratch + "/ref"
	snaps, err := findSnaps(zfs, pools["a"], prev)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if _, err := zfsPipe(zfs, "", snaps[prev], target); err != nil {
		return nil, fmt.Errorf("the reference's full send | receive: %w", err)
	}
	fmt.Printf("  reference full zfs send | receive of %s in %v\n", snaps[prev], time.Since(start).Round(time.Millisecond))

	fuseCPU := zfsFuseCPUOf(zfsFusePIDs())
	var samples []pushSample
	for i := 0; i < runs; i++ {
		cur, err := rig.change(dir, size, i)
		if err != nil {
			return nil, err
		}
		snaps, err := findSnaps(zfs, pools["a"], prev, cur)
		if err != nil {
			return nil, err
		}
		from, to := snaps[prev], snaps[cur]
		var s pushSample
		// `zfs send -i from to | wc -c`.
		if s.refBytes, err = zfsSendBytes(zfs, from, to); err != nil {
			return nil, err
		}
		steps := []func() error{
			func() error {
				nodes, fuse := rig.nodesCPU(), fuseCPU()
				d, res, err := rig.push()
				s.dmFuse = fuseCPU() - fuse // first: the nodes' work behind the answer has begun
				s.dmTime, s.dmBytes, s.dmServer = d, res.Bytes, res.Duration
				s.dmCPU = rig.lastCPU + rig.nodesCPU() - nodes
				if err == nil && res.Format != "" && !strings.Contains(res.Format, "zfs") {
					fmt.Printf("  note: dm push used the %q stream\n", res.Format)
				}
				return err
			},
			func() error {
				fuse := fuseCPU()
				d, cpu, err := zfsPipeCPU(zfs, from, to, target)
				s.refTime, s.refCPU, s.refFuse = d, cpu, fuseCPU()-fuse
				return err
			},
		}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			settle(settleFor)
			if err := step(); err != nil {
				return nil, err
			}
		}
		fmt.Printf("  run %d: dm push %s in %v; zfs send -i %s, send|receive %v\n", i+1,
			human(s.dmBytes), s.dmTime.Round(time.Millisecond), human(s.refBytes), s.refTime.Round(time.Millisecond))
		samples = append(samples, s)
		prev = cur
	}
	return report(samples, "zfs", "zfs send -i bytes", "zfs send -i | zfs receive", 1.2), nil
}

// settleFor is how long a timed zfs step waits for the work the nodes do
// behind their answers (kept registry records after a quiet 400 ms, the
// retired working state after a push; at most a few zfs commands) to end:
// the step that ran first in a run paid for the commit's share before, and
// the reference for the push's.
const settleFor = 2 * time.Second

// settle starts a timed step on an idle pool: the page cache written
// out, d for the nodes' work behind their answers to end, then that
// written out too.
func settle(d time.Duration) {
	syscall.Sync()
	time.Sleep(d)
	syscall.Sync()
}

// findSnaps returns the full names of the snapshots named after the
// commits in pool: those of the one dataset holding all of them.
func findSnaps(zfs, pool string, commits ...string) (map[string]string, error) {
	out, err := exec.Command(zfs, "list", "-H", "-t", "snapshot", "-o", "name", "-r", pool).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("zfs list -t snapshot -r %s: %v: %s", pool, err, out)
	}
	byFS := map[string]map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fs, snap, ok := strings.Cut(strings.TrimSpace(l), "@")
		if !ok {
			continue
		}
		for _, c := range commits {
			if snap == c {
				if byFS[fs] == nil {
					byFS[fs] = map[string]string{}
				}
				byFS[fs][c] = fs + "@" + snap
			}
		}
	}
	for _, m := range byFS {
		if len(m) == len(commits) {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no dataset in pool %s has snapshots of commits %v; zfs list says:\n%s", pool, commits, out)
}

// zfsSendBytes counts the bytes of `zfs send -i from to`.
func zfsSendBytes(zfs, from, to string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, zfs, "send", "-i", from, to)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	n, cerr := io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("zfs send -i %s %s: %v: %s", from, to, err, strings.TrimSpace(errb.String()))
	}
	return n, cerr
}

// zfsPipe times `zfs send [-i from] to | zfs receive target`, the two
// joined by an OS pipe as a shell would.
func zfsPipe(zfs, from, to, target string) (time.Duration, error) {
	d, _, err := zfsPipeCPU(zfs, from, to, target)
	return d, err
}

// zfsPipeCPU is zfsPipe, and the CPU time of the two commands.
func zfsPipeCPU(zfs, from, to, target string) (time.Duration, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	args := []string{"send"}
	if from != "" {
		args = append(args, "-i", from)
	}
	send := exec.CommandContext(ctx, zfs, append(args, to)...)
	recv := exec.CommandContext(ctx, zfs, "receive", target)
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	var serr, rerr bytes.Buffer
	send.Stdout, send.Stderr = pw, &serr
	recv.Stdin, recv.Stdout, recv.Stderr = pr, &rerr, &rerr
	start := time.Now()
	if err := recv.Start(); err != nil {
		pr.Close()
		pw.Close()
		return 0, 0, err
	}
	if err := send.Start(); err != nil {
		pw.Close()
		pr.Close()
		recv.Wait()
		return 0, 0, err
	}
	pr.Close()
	pw.Close()
	se, re := send.Wait(), recv.Wait()
	d := time.Since(start)
	var cpu time.Duration
	for _, c := range []*exec.Cmd{send, recv} {
		cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	if se != nil {
		return d, cpu, fmt.Errorf("%s: %v: %s", strings.Join(send.Args, " "), se, strings.TrimSpace(serr.String()))
	}
	if re != nil {
		return d, cpu, fmt.Errorf("%s: %v: %s", strings.Join(recv.Args, " "), re, strings.TrimSpace(rerr.String()))
	}
	return d, cpu, nil
}

// zfsFusePIDs lists the running zfs-fuse daemons (none with OpenZFS,
// which works in the kernel).
func zfsFusePIDs() []int {
	out, _ := exec.Command("pgrep", "-x", "zfs-fuse").Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// zfsFuseCPUOf reads the CPU time of the daemons in pids, found once
// beforehand: a timed step's reading must not wait for a pgrep's fork
// and exec, while the nodes' work behind dm's answer (the switch's zfs
// clone and destroy) starts and would be counted as the push's.
func zfsFuseCPUOf(pids []int) func() time.Duration {
	return func() time.Duration {
		var sum time.Duration
		for _, pid := range pids {
			d, _ := cpuTime(pid) // 0 for a daemon gone meanwhile
			sum += d
		}
		return sum
	}
}

// --- files → files ---

var rsyncSent = regexp.MustCompile(`(?m)^Total bytes sent:\s*([\d,.]+)`)

// rsyncChange times `rsync -a --no-whole-file` of src onto dst, which
// holds the previous version, and returns the bytes rsync sent.
func rsyncChange(rsync, src, dst string) (time.Duration, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	d, out, err := timedCmd(exec.CommandContext(ctx, rsync, "-a", "--no-whole-file", "--stats", src+"/", dst+"/"))
	if err != nil {
		return d, 0, err
	}
	m := rsyncSent.FindSubmatch(out)
	if m == nil {
		return d, 0, fmt.Errorf("rsync --stats printed no \"Total bytes sent\":\n%s", out)
	}
	n, err := strconv.ParseInt(strings.NewReplacer(",", "", ".", "").Replace(string(m[1])), 10, 64)
	return d, n, err
}

// pushFiles compares against rsync rather than `restic copy`: rsync moves
// a changed tree between two places and reports the bytes it put on the
// wire (its delta algorithm sends only changed blocks of changed files,
// which is the bar for "bytes on the wire"), whereas restic copy moves
// blobs between two repositories, reports no wire bytes (only the
// destination's growth could stand in) and needs a restic backup of each
// version first, so it would time re-encryption between two repositories
// rather than a transfer of a change.
func pushFiles(dm string, size int64, runs int, keep bool) (rows []func(*verdicts), err error) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		return nil, skipped{"rsync is not installed (apt-get install rsync); this part compares against it"}
	}
	work, err := os.MkdirTemp("", "dotmesh-bench-push-files-")
	if err != nil {
		return nil, err
	}
	var rig *pushRig
	defer func() {
		if rig != nil {
			rig.stop()
		}
		if keep {
			fmt.Printf("  kept %s\n", work)
		} else {
			os.RemoveAll(work)
		}
	}()
	fmt.Println("  starting two files nodes...")
	rig, err = startPushRig(dm, work, func(string) []string { return nil })
	if err != nil {
		return nil, err
	}
	dir, _, err := rig.fill(size)
	if err != nil {
		return nil, err
	}
	// The receiver's copy: the first version, its times preserved, so
	// that rsync's quick check skips what did not change, as it would.
	dst := filepath.Join(work, "rsync-copy")
	start := time.Now()
	if _, out, err := timedCmd(exec.Command(rsync, "-a", dir+"/", dst+"/")); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	fmt.Printf("  reference full rsync in %v\n", time.Since(start).Round(time.Millisecond))

	var samples []pushSample
	for i := 0; i < runs; i++ {
		if _, err := rig.change(dir, size, i); err != nil {
			return nil, err
		}
		var s pushSample
		err := inTurns(i, func() error {
			d, res, err := rig.push()
			s.dmTime, s.dmBytes, s.dmServer = d, res.Bytes, res.Duration
			return err
		}, func() error {
			var err error
			s.refTime, s.refBytes, err = rsyncChange(rsync, dir, dst)
			return err
		})
		if err != nil {
			return nil, err
		}
		fmt.Printf("  run %d: dm push %s in %v; rsync sent %s in %v\n", i+1,
			human(s.dmBytes), s.dmTime.Round(time.Millisecond), human(s.refBytes), s.refTime.Round(time.Millisecond))
		samples = append(samples, s)
	}
	return report(samples, "files", "rsync bytes sent", "rsync --no-whole-file", 1.5), nil
}
