package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// snapKind is a snapshotting backend and the raw tool its commit wraps.
type snapKind struct {
	name, rawName string
	// check returns a skipped error when the part is missing.
	check func() error
	// start returns the extra `dm cluster init` flags, the pool they
	// name (if any) and a function undoing what start made (run after the
	// node has stopped).
	start func(data string, poolSize int64) (flags []string, pool string, undo func())
	// raw makes a comparable dataset or subvolume beside the dots, holding
	// what fill writes into its directory, and returns the directory and
	// the raw snapshot command for run i.
	raw func(data, pool string, fill func(dir string) error) (dir string, snap func(i int) *exec.Cmd, err error)
}

var zfsKind = snapKind{
	name: "zfs", rawName: "zfs snapshot",
	check: func() error {
		if os.Geteuid() != 0 {
			return skipped{"the zfs backend needs root"}
		}
		zpool, err := sbin("zpool")
		if err != nil {
			return skipped{"ZFS is not installed (apt-get install zfs-fuse, or OpenZFS)"}
		}
		if exec.Command(zpool, "list").Run() == nil {
			return nil
		}
		zfsFuse, err := sbin("zfs-fuse")
		if err != nil {
			return skipped{"ZFS does not answer: load the zfs module or install zfs-fuse"}
		}
		// zfs-fuse is installed but not running: start it (it forks),
		// and stop it when the bench ends (stopOwnZFSFuse), so that no
		// daemon of ours outlives the run.
		fmt.Println("starting zfs-fuse")
		_ = os.Remove(benchZFSPidfile) // zfs-fuse refuses to start over a stale one
		if out, err := exec.Command(zfsFuse, "--pidfile", benchZFSPidfile).CombinedOutput(); err != nil {
			return skipped{fmt.Sprintf("ZFS does not answer and zfs-fuse did not start: %v: %s", err, out)}
		}
		startedZFSFuse = true
		for range 100 {
			if exec.Command(zpool, "list").Run() == nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return skipped{"zfs-fuse was started but does not answer"}
	},
	start: func(_ string, poolSize int64) ([]string, string, func()) {
		pool := "dmbench" + randHex(4)
		undo := func() {
			zpool, _ := sbin("zpool")
			for range 20 {
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
		return []string{"--backend", "zfs", "--zfs-pool", pool, "--pool-size", strconv.FormatInt(poolSize, 10)}, pool, undo
	},
	raw: func(data, pool string, fill func(string) error) (string, func(int) *exec.Cmd, error) {
		zfs, err := sbin("zfs")
		if err != nil {
			return "", nil, err
		}
		// Beside the dots' filesystems, in the same pool, with the
		// properties the backend gives them.
		ds, dir := pool+"/bench-raw", filepath.Join(data, "bench-raw")
		if out, err := exec.Command(zfs, "create", "-o", "atime=off", "-o", "mountpoint="+dir, ds).CombinedOutput(); err != nil {
			return "", nil, fmt.Errorf("zfs create %s: %v: %s", ds, err, out)
		}
		if err := fill(dir); err != nil {
			return "", nil, err
		}
		return dir, func(i int) *exec.Cmd { return exec.Command(zfs, "snapshot", fmt.Sprintf("%s@raw%d", ds, i)) }, nil
	},
}

var btrfsKind = snapKind{
	name: "btrfs", rawName: "btrfs subvolume snapshot -r",
	check: func() error {
		if os.Geteuid() != 0 {
			return skipped{"the btrfs backend loop-mounts an image and needs root"}
		}
		for _, n := range []string{"btrfs", "mkfs.btrfs"} {
			if _, err := exec.LookPath(n); err != nil {
				return skipped{n + " not found: btrfs-progs is not installed (apt-get install btrfs-progs)"}
			}
		}
		if _, err := exec.LookPath("losetup"); err != nil {
			return skipped{"losetup not found (apt-get install mount)"}
		}
		return nil
	},
	start: func(data string, poolSize int64) ([]string, string, func()) {
		// The node unmounts its image when it stops; should that fail,
		// unmount and detach it here before the work directory goes.
		undo := func() {
			mnt, img := filepath.Join(data, "btrfs", "btrfs"), filepath.Join(data, "btrfs", "btrfs.img")
			if exec.Command("mountpoint", "-q", mnt).Run() == nil {
				fmt.Fprintf(os.Stderr, "bench: %s is still mounted; unmounting it\n", mnt)
				if exec.Command("umount", mnt).Run() != nil {
					exec.Command("umount", "-l", mnt).Run()
				}
			}
			out, _ := exec.Command("losetup", "-j", img).Output()
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if dev, _, ok := strings.Cut(l, ":"); ok && strings.HasPrefix(dev, "/dev/") {
					exec.Command("losetup", "-d", dev).Run()
				}
			}
		}
		return []string{"--backend", "btrfs", "--pool-size", strconv.FormatInt(poolSize, 10)}, "", undo
	},
	raw: func(data, _ string, fill func(string) error) (string, func(int) *exec.Cmd, error) {
		// A subvolume beside the dots, in the same mounted filesystem.
		root := filepath.Join(data, "btrfs", "btrfs")
		dir := filepath.Join(root, "bench-raw")
		if out, err := exec.Command("btrfs", "subvolume", "create", dir).CombinedOutput(); err != nil {
			return "", nil, fmt.Errorf("btrfs subvolume create: %v: %s", err, out)
		}
		if err := fill(dir); err != nil {
			return "", nil, err
		}
		return dir, func(i int) *exec.Cmd {
			return exec.Command("btrfs", "subvolume", "snapshot", "-r", dir, filepath.Join(root, fmt.Sprintf("bench-raw-snap%d", i)))
		}, nil
	},
}

// snapSample holds the durations of one measure over the runs.
type snapSample []time.Duration

func (s snapSample) median() time.Duration {
	v := append(snapSample(nil), s...)
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2]
}

// snapNode is a node of a snapshot kind in a work directory of its own.
type snapNode struct {
	work, data, pool string
	env              []string
	sh               func(args ...string) (string, error)
	flags            []string
	port             int
	undo             func()
}

// startSnapNode prepares a node of kind k with a pool for size bytes;
// init starts it; stop stops it and removes what it made.
func startSnapNode(k snapKind, dm string, size int64) (*snapNode, error) {
	work, err := os.MkdirTemp("", "dotmesh-bench-"+k.name+"-")
	if err != nil {
		return nil, err
	}
	n := &snapNode{work: work, data: filepath.Join(work, "data"), env: append(os.Environ(), "DOTMESH_CONFIG="+filepath.Join(work, "config"))}
	n.sh = dmRunner(dm, n.env)
	if n.port, err = freePort(); err != nil {
		os.RemoveAll(work)
		return nil, err
	}
	n.flags, n.pool, n.undo = k.start(n.data, 3*size+1<<30)
	return n, nil
}

func (n *snapNode) init() error {
	_, err := n.sh(clusterInitArgs(n.data, n.port, n.flags...)...)
	return err
}

func (n *snapNode) stop(keep bool) error {
	_, err := n.sh("cluster", "stop", "--data-dir", n.data)
	n.undo()
	if !keep {
		os.RemoveAll(n.work)
	}
	return err
}

// runSnapshots measures, on a fresh node of kind k: `dm commit` of a dot
// holding 1 MiB and of one holding size bytes, the raw snapshot of a
// comparable dataset holding size bytes in the same pool, and `dm checkout
// -b` of both dots. Each run changes a small file in each first (not
// timed), so every commit has something new.
func runSnapshots(k snapKind, dm string, size int64, runs int, keep bool) (err error) {
	if err := k.check(); err != nil {
		return err
	}
	if runs < 1 {
		runs = 1
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
	data, env, sh, pool := n.data, n.env, n.sh, n.pool
	fmt.Printf("starting a %s node; writing 1 MiB and %s into two dots and %s into a raw %s...\n", k.name, human(size), human(size), map[string]string{"zfs": "dataset", "btrfs": "subvolume"}[k.name])
	if err := n.init(); err != nil {
		return err
	}
	dots := []struct {
		name string
		size int64
	}{{"small", 1 << 20}, {"large", size}}
	dirs := map[string]string{}
	for _, d := range dots {
		if _, err := sh("init", d.name); err != nil {
			return err
		}
		dir, err := sh("path", d.name+".data")
		if err != nil {
			return err
		}
		if err := fillBytes(dir, d.size); err != nil {
			return err
		}
		if _, err := sh("commit", "--dot", d.name, "-m", "filled"); err != nil {
			return err
		}
		dirs[d.name] = dir
	}
	rawDir, rawSnap, err := k.raw(data, pool, func(dir string) error { return fillBytes(dir, size) })
	if err != nil {
		return err
	}
	dirs["raw"] = rawDir

	pidText, err := os.ReadFile(filepath.Join(data, "dm.pid"))
	if err != nil {
		return err
	}
	nodePid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		return fmt.Errorf("%s: %v", filepath.Join(data, "dm.pid"), err)
	}
	// timed runs cmd and adds its CPU time and the node's to c: wall time
	// alone says little on a loaded machine.
	timed := func(cmd *exec.Cmd, c *snapCPU) (time.Duration, error) {
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if cmd.Env == nil {
			cmd.Env = env
		}
		node0, err := cpuTime(nodePid)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		err = cmd.Run()
		d := time.Since(start)
		if err != nil {
			return d, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(out.String()))
		}
		node1, err := cpuTime(nodePid)
		if err != nil {
			return d, err
		}
		c.proc += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		c.node += node1 - node0
		c.n++
		return d, nil
	}
	dmCmd := func(args ...string) *exec.Cmd { return exec.Command(dm, args...) }
	var commitSmall, commitLarge, raw, branchSmall, branchLarge snapSample
	var cpuSmall, cpuLarge, cpuRaw, cpuBranch snapCPU
	for i := 0; i < runs; i++ {
		for _, dir := range dirs {
			if err := os.WriteFile(filepath.Join(dir, "tick"), []byte(strconv.Itoa(i)), 0o644); err != nil {
				return err
			}
		}
		// The writes are flushed before each timed command
		// (settle), so that no snapshot pays for another's data
		// or for the node's work behind its last answer; the order turns
		// each run, so that none always goes first.
		type measure struct {
			s   *snapSample
			cpu *snapCPU
			cmd *exec.Cmd
		}
		commits := []measure{
			{&commitSmall, &cpuSmall, dmCmd("commit", "--dot", "small", "-m", fmt.Sprint("run ", i))},
			{&raw, &cpuRaw, rawSnap(i)},
			{&commitLarge, &cpuLarge, dmCmd("commit", "--dot", "large", "-m", fmt.Sprint("run ", i))},
		}
		branches := []measure{
			{&branchSmall, &cpuBranch, dmCmd("checkout", "--dot", "small", "-b", fmt.Sprint("b", i))},
			{&branchLarge, &cpuBranch, dmCmd("checkout", "--dot", "large", "-b", fmt.Sprint("b", i))},
		}
		var order []measure
		for j := range commits {
			order = append(order, commits[(i+j)%len(commits)])
		}
		for j := range branches {
			order = append(order, branches[(i+j)%len(branches)])
		}
		for _, m := range order {
			settle(snapSettle)
			d, err := timed(m.cmd, m.cpu)
			if err != nil {
				return err
			}
			*m.s = append(*m.s, d)
		}
		for _, d := range dots {
			if _, err := sh("checkout", "--dot", d.name, "master"); err != nil {
				return err
			}
			dirs[d.name], err = sh("path", d.name+".data")
			if err != nil {
				return err
			}
		}
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Printf("medians of %d runs: dm commit 1 MiB %s, %s %s; raw %s %s; dm checkout -b 1 MiB %s, %s %s\n",
		runs, ms(commitSmall.median()), human(size), ms(commitLarge.median()), k.rawName, ms(raw.median()),
		ms(branchSmall.median()), human(size), ms(branchLarge.median()))
	fmt.Printf("CPU per command (means): dm commit 1 MiB %s, %s %s; raw %s %s; dm checkout -b %s\n",
		cpuSmall, human(size), cpuLarge, k.rawName, cpuRaw, cpuBranch)
	v := newVerdicts(k.name)
	r := commitLarge.median().Seconds() / commitSmall.median().Seconds()
	v.row(fmt.Sprintf("dm commit time %s / 1 MiB", human(size)), r, "~1", r <= 1.5)
	r = commitLarge.median().Seconds() / raw.median().Seconds()
	v.row(fmt.Sprintf("dm commit / raw %s (%s)", k.rawName, human(size)), r, "<= 1.5", r <= 1.5) // issue 22's goal
	r = branchLarge.median().Seconds() / branchSmall.median().Seconds()
	v.row(fmt.Sprintf("dm checkout -b time %s / 1 MiB", human(size)), r, "~1", r <= 1.5)
	return v.flush()
}

// snapSettle is how long each timed command of the snapshot sections
// waits for what the node does behind its answer to the command before
// (the registry's write and fsync, the records written behind and synced
// 200 ms later on btrfs, after a quiet 400 ms on zfs): without it, the
// next command's snapshot, often the raw one, carried that work in its
// transaction (0.8 ms more for a raw btrfs snapshot right after a dm
// commit).
const snapSettle = time.Second

// snapCPU sums the CPU time of timed commands and of the node while each
// ran. The node's is its threads' run time (cpuTime, nanoseconds); work
// the node does after answering (records written behind) and the CPU of
// a zfs-fuse daemon are not in it.
type snapCPU struct {
	proc, node time.Duration
	n          int
}

func (c snapCPU) String() string {
	if c.n == 0 {
		return "-"
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(c.n) }
	return fmt.Sprintf("process %.1f ms + node %.1f ms", ms(c.proc), ms(c.node))
}

// fillBytes writes n bytes of incompressible data into dir, in files of
// at most 64 MiB.
func fillBytes(dir string, n int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	buf := make([]byte, 64<<20)
	rng := mrand.New(mrand.NewSource(n))
	rng.Read(buf)
	for i := 0; n > 0; i++ {
		c := min(n, int64(len(buf)))
		buf[0], buf[1] = byte(i), byte(i>>8) // no two files alike
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("blob%03d", i)), buf[:c], 0o644); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

// sbin finds a tool on PATH or in the sbin directories services often
// lack.
func sbin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode().IsRegular() {
			return filepath.Join(d, name), nil
		}
	}
	return "", errors.New(name + " not found")
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// benchZFSPidfile is where the zfs-fuse the bench starts writes its PID.
var benchZFSPidfile = filepath.Join(os.TempDir(), "dotmesh-bench-zfs-fuse.pid")

// startedZFSFuse is set when the bench started zfs-fuse itself.
var startedZFSFuse bool

// stopOwnZFSFuse stops the zfs-fuse the bench started, by the PID it
// wrote, once every section has destroyed its pools; a daemon someone
// else started is left alone.
func stopOwnZFSFuse() {
	if !startedZFSFuse {
		return
	}
	b, err := os.ReadFile(benchZFSPidfile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: the zfs-fuse it started left no pidfile (%v); stop it by hand\n", err)
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		fmt.Fprintf(os.Stderr, "bench: pidfile %s holds %q; stop zfs-fuse by hand\n", benchZFSPidfile, b)
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			_ = os.Remove(benchZFSPidfile)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "bench: zfs-fuse %d did not stop within 10 s\n", pid)
}
