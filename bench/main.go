// Command bench measures dotmesh against the raw tools it competes with,
// side by side in one run, and prints ratios (medians over -runs). Run it
// with `make bench`; it uses bin/dm and, per section (-only):
//
//	dump   the files backend against Debian's restic
//	zfs    dm commit and branch at 1 MiB and -snap-size against each other
//	       and against the raw `zfs snapshot` (root, zfs-fuse or OpenZFS)
//	btrfs  the same against `btrfs subvolume snapshot -r` (root,
//	       btrfs-progs, loop devices)
//	pg     a pgbench database as a postgresql source against pg_dump
//	       (postgresql; not in the default list: BENCHFLAGS=-only=pg)
//	cluster  three nodes on etcd: replication lag of a commit to the two
//	       others; dm list and dm log on etcd against bbolt (etcd-server;
//	       not in the default list: BENCHFLAGS=-only=cluster)
//	ui     the web UI's server time per page (dot list, history, commit)
//	       with -ui-dots dots and a branch of -ui-log commits, in this
//	       process on the files backend; target <= 100 ms each
//	push   an incremental dm push of a 1% change to a -push-size dot
//	       between two nodes: zfs→zfs against zfs send -i (bytes) and a
//	       local send | receive pipe (time), files→files against rsync
//	diff   dm diff --stat between two commits of a -diff-size tree with 1%
//	       changed, against diff -rq of the two trees: on the files
//	       backend (target <= 0.05), and with -diff-snap-size on zfs and
//	       btrfs against the two snapshots (target <= 1; root). The pg
//	       section times the row diff of a 1% update against pg_dump.
//	s3     dm push, clone and an incremental push of a 1% change of a
//	       -s3-size tree to an encrypted bucket remote against restic
//	       backup and restore, both on one local SeaweedFS S3 server
//	       (bucket/s3test; `make bench` builds weed with
//	       scripts/ensure-seaweedfs.sh): times (target <= 0.8), bytes
//	       uploaded (<= 1.1) and the node's peak memory (< 200 MB)
//	gc     dm gc --keep 1 after five 5% rewrites of a -gc-size tree (8 GiB;
//	       2 GiB with -gc-size 2147483648) against restic forget
//	       --keep-last 1 --prune of the same states, and dm verify against
//	       restic check --read-data: times and peak memory (<= 1), all
//	       garbage freed (not in the default list, ~15 minutes at 8 GiB:
//	       BENCHFLAGS=-only=gc)
//	small  a tree of -small-files files of 0-4 KiB (500,000: 1 GB):
//	       dm commit (first, unchanged, 1% changed) against restic backup,
//	       dm checkout -b against cp -a + sync (target <= 1) and restic
//	       restore, the node's peak memory in commits (<= 300 MB); about
//	       10 minutes a run, so not in the default list: BENCHFLAGS=-only=small
//
// A section whose part is missing says so and is skipped. Each section
// prints its ratios against their targets (issue 22's goals where it sets
// one for the measure); the run ends with one table of every such row of
// every section that ran. No node the bench starts serves the Docker
// volume plugin (noPlugin).
//
// Machines here are shared and noisy: compare the ratios, not the absolute
// times.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/dotmesh-io/dotmesh/internal/fdleak"
)

func main() {
	// zfs-fuse forks into the background and the nodes, servers and
	// databases outlive a killed bench: none may keep a lock a `flock`
	// wrapper handed it (every later `flock` on that file would wait).
	fdleak.CloseInheritedOnExec()
	size := flag.Int64("size", 1<<30, "bytes of the generated tree (dump)")
	runs := flag.Int("runs", 3, "repetitions of the dump section; medians are reported")
	snapSize := flag.Int64("snap-size", 1<<30, "bytes in the large dot (zfs, btrfs)")
	snapRuns := flag.Int("snap-runs", 7, "repetitions of each measure of the zfs and btrfs sections")
	only := flag.String("only", "dump,zfs,btrfs,push,ui,diff,s3", "comma-separated `SECTIONS` to run: dump, zfs, btrfs, pg, cluster, push, ui, diff, s3, gc, small")
	dm := flag.String("dm", "bin/dm", "the dm binary")
	pgScale := flag.Int("pg-scale", 10, "pgbench scale of the pg section (10: ~150 MB)")
	keep := flag.Bool("keep", false, "keep the work directory")
	clCommits := flag.Int("cluster-commits", 9, "commits whose replication lag the cluster section measures")
	clDots := flag.Int("cluster-dots", 1000, "dots `dm list` lists in the cluster section")
	clLog := flag.Int("cluster-log", 10000, "commits `dm log` shows in the cluster section")
	clReuse := flag.String("cluster-reuse", "", "the kept work `DIR` of an earlier cluster run (-keep): time list and log on its registries again without making them")
	clBase := flag.String("cluster-base-dm", "", "a `DM` (another build) whose nodes and CLI the cluster section times first on the same registries, for before and after in one run")
	pushSize := flag.Int64("push-size", 1<<30, "bytes in the dot the push section pushes a 1% change of")
	pushRuns := flag.Int("push-runs", 3, "repetitions of the push section's incremental push; medians are reported")
	uiDots := flag.Int("ui-dots", 1000, "dots the ui section lists")
	uiLog := flag.Int("ui-log", 10000, "commits in the branch whose history the ui section pages")
	uiRuns := flag.Int("ui-runs", 21, "requests per page in the ui section; medians are reported")
	diffSize := flag.Int64("diff-size", 1<<30, "bytes of the files-backend tree the diff section compares two commits of")
	diffSnapSize := flag.Int64("diff-snap-size", 256<<20, "bytes of the zfs and btrfs dots the diff section compares two commits of; 0 runs only the files case")
	diffRuns := flag.Int("diff-runs", 5, "repetitions of each diff measure; medians are reported")
	pushKinds := flag.String("push-kinds", "zfs,files,zfs-files", "comma-separated backends the push section pushes between: zfs, files, zfs-files (the neutral stream from a zfs node to a files node)")
	s3Size := flag.Int64("s3-size", 1<<30, "bytes of the tree the s3 section pushes, clones and changes 1% of")
	s3Runs := flag.Int("s3-runs", 3, "repetitions of the s3 section; medians are reported")
	gcSize := flag.Int64("gc-size", 8<<30, "bytes of the tree the gc section commits and rewrites 5% of five times")
	gcRuns := flag.Int("gc-runs", 1, "repetitions of the gc section; medians are reported")
	smallFiles := flag.Int("small-files", 500_000, "files of 0-4 KiB in the small section's tree")
	smallRuns := flag.Int("small-runs", 1, "repetitions of the small section; medians are reported")
	flag.Parse()
	dmPath, err := filepath.Abs(*dm)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	sections := map[string]func() error{
		"dump":  func() error { return run(dmPath, *size, *runs, *keep) },
		"zfs":   func() error { return runSnapshots(zfsKind, dmPath, *snapSize, *snapRuns, *keep) },
		"btrfs": func() error { return runSnapshots(btrfsKind, dmPath, *snapSize, *snapRuns, *keep) },
		"pg":    func() error { return runPG(dmPath, *pgScale, *keep) },
		"cluster": func() error {
			base := *clBase
			if base != "" {
				var err error
				if base, err = filepath.Abs(base); err != nil {
					return err
				}
			}
			return runCluster(dmPath, base, *clCommits, *clDots, *clLog, *keep, *clReuse)
		},
		"push":  func() error { return runPush(dmPath, *pushSize, *pushRuns, *pushKinds, *keep) },
		"ui":    func() error { return runUI(*uiDots, *uiLog, *uiRuns, *keep) },
		"diff":  func() error { return runDiff(dmPath, *diffSize, *diffSnapSize, *diffRuns, *keep) },
		"s3":    func() error { return runS3(dmPath, *s3Size, *s3Runs, *keep) },
		"gc":    func() error { return runGC(dmPath, *gcSize, *gcRuns, *keep) },
		"small": func() error { return runSmall(dmPath, *smallFiles, *smallRuns, *keep) },
	}
	failed := false
	defer stopOwnZFSFuse() // os.Exit below skips it: the failure paths call it first
	for _, name := range strings.Split(*only, ",") {
		name = strings.TrimSpace(name)
		sec, ok := sections[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "bench: unknown section %q in -only; choose from dump, zfs, btrfs, pg, cluster, push, ui, diff, s3, gc, small\n", name)
			os.Exit(2)
		}
		fmt.Printf("== %s ==\n", name)
		var skip skipped
		switch err := sec(); {
		case errors.As(err, &skip):
			fmt.Printf("%s: skipped: %s\n\n", name, skip.why)
		case err != nil:
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n\n", name, err)
			failed = true
		}
	}
	printSummary(summary)
	if failed {
		stopOwnZFSFuse()
		os.Exit(1)
	}
}

// skipped is returned by a section whose part is missing.
type skipped struct{ why string }

func (s skipped) Error() string { return "skipped: " + s.why }

// verdicts prints a section's rows of ratios with their targets, and
// records each row in summary too.
type verdicts struct {
	tw      *tabwriter.Writer
	section string
}

// summaryRow is one verdict row, kept for the table that ends the run.
type summaryRow struct {
	section, measure, target, verdict string
	ratio                             float64
}

// summary collects the verdict rows of every section that ran, in order.
var summary []summaryRow

func newVerdicts(section string) *verdicts {
	v := &verdicts{tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0), section}
	fmt.Fprintln(v.tw, "\nmeasure\tratio\ttarget\tverdict")
	return v
}

func (v *verdicts) row(name string, ratio float64, target string, ok bool) {
	verdict := "ok"
	if !ok {
		verdict = "MISSED"
	}
	fmt.Fprintf(v.tw, "%s\t%.3f\t%s\t%s\n", name, ratio, target, verdict)
	summary = append(summary, summaryRow{v.section, name, target, verdict, ratio})
}

func (v *verdicts) flush() error {
	err := v.tw.Flush()
	fmt.Println()
	return err
}

// printSummary prints every verdict row of the run in one table.
func printSummary(rows []summaryRow) {
	if len(rows) == 0 {
		return
	}
	missed := 0
	fmt.Println("== summary: every ratio against its target ==")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "section\tmeasure\tratio\ttarget\tverdict")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%s\t%s\n", r.section, r.measure, r.ratio, r.target, r.verdict)
		if r.verdict != "ok" {
			missed++
		}
	}
	tw.Flush()
	fmt.Printf("%d rows, %d missed\n", len(rows), missed)
}

type sample struct {
	dmFirst, dmSame, dmChanged, restic   time.Duration
	dmStored, dmSameAdded, dmChangeAdded int64
	resticStored                         int64
}

// needRestic skips a section that compares against restic when it is
// not installed.
func needRestic() error {
	if _, err := exec.LookPath("restic"); err != nil {
		return skipped{"restic is not installed (apt-get install restic); this section compares against it"}
	}
	return nil
}

func run(dm string, size int64, runs int, keep bool) error {
	if err := needRestic(); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "dotmesh-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(work)
	}
	fmt.Printf("generating a %s tree of mixed file sizes...\n", human(size))
	tree := filepath.Join(work, "tree")
	nfiles, err := generate(tree, size)
	if err != nil {
		return err
	}
	fmt.Printf("%d files; %d runs; medians below\n\n", nfiles, runs)

	var samples []sample
	for i := 0; i < runs; i++ {
		s, err := oneRun(dm, work, tree, size, i)
		if err != nil {
			return err
		}
		samples = append(samples, s)
		first := "dm"
		if i%2 == 1 {
			first = "restic"
		}
		fmt.Printf("run %d (%s first): dm first %v, restic %v, unchanged %v, 1%% change %v\n", i+1, first,
			s.dmFirst.Round(time.Millisecond), s.restic.Round(time.Millisecond), s.dmSame.Round(time.Millisecond), s.dmChanged.Round(time.Millisecond))
	}
	med := func(f func(sample) float64) float64 {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = f(s)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	v := newVerdicts("dump")
	row := v.row
	r := med(func(s sample) float64 { return s.dmFirst.Seconds() / s.restic.Seconds() })
	row("first commit time / restic backup time", r, "<= 1", r <= 1)
	r = med(func(s sample) float64 { return float64(s.dmStored) / float64(s.resticStored) })
	row("first commit stored bytes / restic repo bytes", r, "~1", r <= 1.25)
	r = med(func(s sample) float64 { return s.dmSame.Seconds() / s.dmFirst.Seconds() })
	row("unchanged re-commit time / first commit time", r, "< 0.10", r < 0.10)
	r = med(func(s sample) float64 { return float64(s.dmSameAdded) / float64(size) })
	row("unchanged re-commit stored bytes / tree size", r, "~0", r < 0.001)
	r = med(func(s sample) float64 { return float64(s.dmChangeAdded) / float64(size) })
	row("1% change: stored bytes added / tree size", r, "< 0.05", r < 0.05)
	return v.flush()
}

// dmRunner returns a function that runs dm with env and returns its
// trimmed output, or an error with its stderr.
func dmRunner(dm string, env []string) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		cmd := exec.Command(dm, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("dm %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
}

// oneRun starts a fresh node, commits the tree three times (first,
// unchanged, after a 1% change) and backs up the same tree with restic,
// dm first on even runs and restic first on odd ones, syncing before each
// timed command.
func oneRun(dm, work, tree string, size int64, i int) (sample, error) {
	var s sample
	dir := filepath.Join(work, fmt.Sprint("run", i))
	data := filepath.Join(dir, "data")
	env := append(os.Environ(), "DOTMESH_CONFIG="+filepath.Join(dir, "config"))
	port, err := freePort()
	if err != nil {
		return s, err
	}
	sh := dmRunner(dm, env)
	if _, err := sh(clusterInitArgs(data, port)...); err != nil {
		return s, err
	}
	defer sh("cluster", "stop")
	if _, err := sh("init", "bench"); err != nil {
		return s, err
	}
	sub, err := sh("path", "bench.files")
	if err != nil {
		return s, err
	}
	// Hard links would share inodes with the source; copy for real.
	if out, err := exec.Command("cp", "-a", tree+"/.", sub).CombinedOutput(); err != nil {
		return s, fmt.Errorf("copying the tree: %v: %s", err, out)
	}
	store := filepath.Join(data, "dump", "store")
	// Each timed command starts with the disks synced, so that none pays
	// for another's writeback (the copy's above, a commit's, restic's).
	timed := func(args ...string) (time.Duration, int64, error) {
		syscall.Sync()
		before, _ := du(store)
		start := time.Now()
		_, err := sh(args...)
		d := time.Since(start)
		after, _ := du(store)
		return d, after - before, err
	}
	repo := filepath.Join(dir, "restic")
	renv := append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_CACHE_DIR="+filepath.Join(dir, "restic-cache"))
	init := exec.Command("restic", "init", "--repo", repo)
	init.Env = renv
	if out, err := init.CombinedOutput(); err != nil {
		return s, fmt.Errorf("restic init: %v: %s", err, out)
	}
	// dm's three commits and restic's backup of the same tree take turns
	// going first (inTurns: dm first on even runs), so that neither always
	// finds the machine as the other left it.
	dmSide := func() (err error) {
		if s.dmFirst, s.dmStored, err = timed("commit", "--dot", "bench", "-m", "first"); err != nil {
			return err
		}
		if s.dmSame, s.dmSameAdded, err = timed("commit", "--dot", "bench", "-m", "unchanged", "--allow-empty"); err != nil {
			return err
		}
		if err := changeOnePercent(sub, size, int64(i)); err != nil {
			return err
		}
		s.dmChanged, s.dmChangeAdded, err = timed("commit", "--dot", "bench", "-m", "1% changed")
		return err
	}
	resticSide := func() error {
		backup := exec.Command("restic", "backup", "--quiet", "--repo", repo, tree)
		backup.Env = renv
		syscall.Sync()
		start := time.Now()
		if out, err := backup.CombinedOutput(); err != nil {
			return fmt.Errorf("restic backup: %v: %s", err, out)
		}
		s.restic = time.Since(start)
		return nil
	}
	if err := inTurns(i, dmSide, resticSide); err != nil {
		return s, err
	}
	s.resticStored, err = du(repo)
	return s, err
}

// generate writes a deterministic tree: many small text-like files, some
// medium binaries, a few large files; half of the bytes compress well.
func generate(root string, total int64) (int, error) {
	rng := rand.New(rand.NewSource(42))
	words := []string{"lorem", "ipsum", "customer", "order", "INSERT", "VALUES", "select", "2026-11-22", "dotmesh", "\n"}
	var written int64
	n := 0
	for written < total {
		var size int64
		switch r := rng.Intn(100); {
		case r < 70:
			size = 1<<10 + rng.Int63n(64<<10)
		case r < 97:
			size = 256<<10 + rng.Int63n(4<<20)
		default:
			size = 16<<20 + rng.Int63n(48<<20)
		}
		if written+size > total {
			size = total - written
		}
		p := filepath.Join(root, fmt.Sprintf("d%02d", n%37), fmt.Sprintf("s%d", n%5), fmt.Sprintf("f%06d.dat", n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return n, err
		}
		buf := make([]byte, size)
		if n%2 == 0 {
			rng.Read(buf)
		} else {
			var b strings.Builder
			for int64(b.Len()) < size {
				b.WriteString(words[rng.Intn(len(words))])
				b.WriteByte(' ')
			}
			copy(buf, b.String())
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return n, err
		}
		written += size
		n++
	}
	return n, nil
}

// changeOnePercent overwrites about 1% of the tree's bytes in place, in
// 256 KiB runs spread over many files (a database changes pages here and
// there, not one contiguous region).
func changeOnePercent(root string, size, seed int64) error {
	return changeBytes(root, size/100, seed)
}

// changeBytes overwrites about budget bytes of the tree in place, as
// changeOnePercent does.
func changeBytes(root string, budget, seed int64) error {
	files, err := regularFiles(root)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewSource(seed + 7))
	run := make([]byte, 256<<10)
	for budget > 0 {
		p := files[rng.Intn(len(files))]
		fi, err := os.Stat(p)
		if err != nil || fi.Size() < int64(len(run)) {
			continue
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		rng.Read(run)
		_, err = f.WriteAt(run, rng.Int63n(fi.Size()-int64(len(run))+1))
		f.Close()
		if err != nil {
			return err
		}
		budget -= int64(len(run))
	}
	return nil
}

// regularFiles lists the regular files under root.
func regularFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	return files, err
}

// du returns the bytes allocated under root.
func du(root string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total, err
}

// clusterInitArgs are the arguments of `dm cluster init` for a bench
// node: its flags and no Docker volume plugin (noPlugin).
func clusterInitArgs(data string, port int, flags ...string) []string {
	args := append([]string{"cluster", "init", "--data-dir", data, "--port", strconv.Itoa(port)}, noPlugin...)
	return append(append(args, logLevelArgs()...), flags...)
}

// logLevelArgs give the nodes the bench starts the log level in
// $DOTMESH_BENCH_LOG_LEVEL (debug: every request, store call and zfs
// command with its duration), when it is set.
func logLevelArgs() []string {
	if l := os.Getenv("DOTMESH_BENCH_LOG_LEVEL"); l != "" {
		return []string{"--log-level", l}
	}
	return nil
}

// noPlugin turns off the Docker volume plugin of every node the bench
// starts (`dm serve`, `dm cluster init`), so that a bench run never takes
// the default socket (/run/docker/plugins/dm.sock) from the node serving it.
var noPlugin = []string{"--docker-socket", ""}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
