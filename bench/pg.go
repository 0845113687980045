package main

// The pg section: a pgbench database (scale -pg-scale, ~15 MB per unit)
// as a postgresql source of a dump-backed dot. The first dm commit on a
// fresh node against plain pg_dump to /dev/null run beside it, alternately
// before and after (the median of seven such pairs' ratios: on this shared
// machine one pair's ratio ranges over 0.9-1.9, and a median of three
// still moves by 0.4);
// an unchanged re-commit; the bytes stored after
// updating 1% of pgbench_accounts (a contiguous range of aid: random
// single-row updates touch every ~512 KiB chunk of a table this size, see
// README); the store after 10 such commits against 10 full compressed
// dumps (pg_dump -Fc) side by side. For scale, pg_dump beside one thread
// that only spins, against pg_dump alone: what any consumer doing CPU work
// costs the dump on this machine.
//
// Last, a realistic change: pgbench's filler column gets random text (so
// that the table no longer compresses to nearly nothing), then each of
// three commits follows 1% of the accounts updated one row at a time at
// random aids (balance and filler): the bytes stored per commit against
// the dump, and the commit's time against pg_dump's, as they are.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

type pgServer struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
}

func (p *pgServer) tool(name string, args ...string) *exec.Cmd {
	return exec.Command(filepath.Join(p.bin, name), append([]string{"-h", p.dir, "-p", strconv.Itoa(p.port), "-U", "postgres"}, args...)...)
}

func (p *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d", db, p.dir, p.port)
}

func (p *pgServer) sql(db, script string) error {
	c := p.tool("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", script)
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("psql: %v: %s", err, out)
	}
	return nil
}

// startPG initdbs and starts a private server as the postgres user.
func startPG(work string) (*pgServer, error) {
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(ms) == 0 {
		return nil, skipped{"PostgreSQL is not installed (apt-get install postgresql)"}
	}
	sort.Strings(ms)
	p := &pgServer{bin: filepath.Dir(ms[len(ms)-1]), dir: filepath.Join(work, "pg")}
	var cred *syscall.SysProcAttr
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, skipped{"no postgres user (apt-get install postgresql)"}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		os.MkdirAll(p.dir, 0o700)
		os.Chown(work, uid, gid)
		os.Chown(p.dir, uid, gid)
	}
	initdb := exec.Command(filepath.Join(p.bin, "initdb"), "-D", filepath.Join(p.dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync")
	initdb.SysProcAttr = cred
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	var err error
	if p.port, err = freePort(); err != nil {
		return nil, err
	}
	p.cmd = exec.Command(filepath.Join(p.bin, "postgres"), "-D", filepath.Join(p.dir, "data"), "-k", p.dir, "-p", strconv.Itoa(p.port), "-c", "listen_addresses=")
	p.cmd.SysProcAttr = cred
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	for i := 0; i < 300; i++ {
		if p.tool("psql", "-X", "-d", "postgres", "-c", "SELECT 1").Run() == nil {
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("postgres did not start")
}

func (p *pgServer) stop() {
	p.cmd.Process.Signal(syscall.SIGINT)
	p.cmd.Wait()
}

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

func runPG(dm string, scale int, keep bool) error {
	work, err := os.MkdirTemp("", "dotmesh-bench-pg-")
	if err != nil {
		return err
	}
	os.Chmod(work, 0o755)
	if !keep {
		defer os.RemoveAll(work)
	}
	pg, err := startPG(work)
	if err != nil {
		return err
	}
	defer pg.stop()
	if err := pg.sql("postgres", "CREATE DATABASE bench"); err != nil {
		return err
	}
	fmt.Printf("pgbench -i -s %d...\n", scale)
	if out, err := pg.tool("pgbench", "-i", "-q", "-s", strconv.Itoa(scale), "bench").CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench: %v: %s", err, out)
	}
	pgDump := func() error {
		c := pg.tool("pg_dump", "-Fp", "-d", "bench")
		c.Stdout = nil // /dev/null
		return c.Run()
	}
	if err := pgDump(); err != nil { // warm the cache
		return fmt.Errorf("pg_dump: %w", err)
	}

	// node starts a dm node in its own directory with dot pgb bound to
	// the database; stop stops it.
	type node struct {
		sh   func(args ...string) (string, error)
		data string
		stop func()
	}
	startNode := func(dir string) (*node, error) {
		env := append(os.Environ(), "DOTMESH_CONFIG="+filepath.Join(dir, "config"))
		n := &node{data: filepath.Join(dir, "data")}
		n.sh = dmRunner(dm, env)
		n.stop = func() { n.sh("cluster", "stop") }
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if _, err := n.sh(clusterInitArgs(n.data, port)...); err != nil {
			return nil, err
		}
		for _, args := range [][]string{{"init", "pgb"}, {"source", "add", "pgb.db", "postgresql", pg.url("bench")}} {
			if _, err := n.sh(args...); err != nil {
				n.stop()
				return nil, err
			}
		}
		return n, nil
	}

	// The first commit on a fresh node against pg_dump run beside it,
	// alternately just before and just after (each order biases the
	// pair: whichever runs second finds the machine as the first left
	// it): medians of the pairs' ratios.
	const firstRuns = 7
	var n *node
	var firstRatios []float64
	var dumpTimes, firstTimes []time.Duration
	for i := 0; i < firstRuns; i++ {
		if n != nil {
			n.stop()
		}
		var err error
		if n, err = startNode(filepath.Join(work, fmt.Sprint("dm", i))); err != nil {
			return err
		}
		var d, c time.Duration
		dump := func() (err error) {
			if d, err = timed(pgDump); err != nil {
				return fmt.Errorf("pg_dump: %w", err)
			}
			return nil
		}
		commit := func() (err error) {
			// --allow-empty: the unchanged re-commit below is meant, and the
			// node sees no files in a dot holding only a source.
			c, err = timed(func() error { _, err := n.sh("commit", "--dot", "pgb", "-m", "first", "--allow-empty"); return err })
			return err
		}
		order := []func() error{dump, commit}
		if i%2 == 1 {
			order = []func() error{commit, dump}
		}
		for _, step := range order {
			if err := step(); err != nil {
				n.stop()
				return err
			}
		}
		dumpTimes, firstTimes = append(dumpTimes, d), append(firstTimes, c)
		firstRatios = append(firstRatios, c.Seconds()/d.Seconds())
	}
	defer n.stop()
	sh, data := n.sh, n.data
	pgDumpTime, firstTime := median(dumpTimes), median(firstTimes)

	// What any CPU work beside pg_dump costs on this machine: pg_dump
	// with one thread of this process spinning, against pg_dump alone.
	var busyRatios []float64
	for i := 0; i < firstRuns; i++ {
		d, err := timed(pgDump)
		if err != nil {
			return fmt.Errorf("pg_dump: %w", err)
		}
		b, err := besideBusyThread(pgDump)
		if err != nil {
			return fmt.Errorf("pg_dump: %w", err)
		}
		busyRatios = append(busyRatios, b.Seconds()/d.Seconds())
	}

	info := func() (map[string]string, error) {
		out, err := sh("log", "--dot", "pgb", "-n", "1", "--json")
		if err != nil {
			return nil, err
		}
		var cs []struct {
			Info dotmesh.CommitInfo `json:"info"` // numbers with --json
		}
		if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs) == 0 {
			return nil, fmt.Errorf("dm log --json: %v", err)
		}
		return cs[0].Info, nil
	}
	num := func(m map[string]string, k string) int64 { n, _ := strconv.ParseInt(m[k], 10, 64); return n }
	commit := func(msg string) (time.Duration, map[string]string, error) {
		d, err := timed(func() error { _, err := sh("commit", "--dot", "pgb", "-m", msg, "--allow-empty"); return err })
		if err != nil {
			return d, nil, err
		}
		m, err := info()
		return d, m, err
	}
	first, err := info()
	if err != nil {
		return err
	}
	dumpSize := num(first, "source.db.dump_bytes")
	sameTime, same, err := commit("unchanged")
	if err != nil {
		return err
	}
	accounts := int64(scale) * 100000
	step := accounts / 100
	var changeAdded []int64
	var changeTimes []time.Duration
	for i := int64(0); i < 10; i++ {
		if err := pg.sql("bench", fmt.Sprintf("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid > %d AND aid <= %d", i*step, (i+1)*step)); err != nil {
			return err
		}
		d, m, err := commit(fmt.Sprint("1% change ", i))
		if err != nil {
			return err
		}
		changeAdded = append(changeAdded, num(m, "new_bytes_stored"))
		changeTimes = append(changeTimes, d)
	}
	// The row diff of the last two commits (each a 1% update of
	// pgbench_accounts) against pg_dump of the database.
	rowDiff := func() error {
		out, err := sh("diff", "--stat", "--dot", "pgb", "HEAD^", "HEAD")
		if err == nil && !strings.Contains(out, "rows") {
			err = fmt.Errorf("dm diff --stat HEAD^ HEAD shows no row changes: %q", out)
		}
		return err
	}
	diffTime, diffDump, diffRatio, err := pairRatios(firstRuns, rowDiff, pgDump)
	if err != nil {
		return err
	}
	storeSize, err := du(filepath.Join(data, "dump", "store"))
	if err != nil {
		return err
	}
	var fc bytes.Buffer
	c := pg.tool("pg_dump", "-Fc", "-d", "bench")
	c.Stdout = &fc
	if err := c.Run(); err != nil {
		return fmt.Errorf("pg_dump -Fc: %w", err)
	}
	sort.Slice(changeAdded, func(i, j int) bool { return changeAdded[i] < changeAdded[j] })
	sort.Slice(changeTimes, func(i, j int) bool { return changeTimes[i] < changeTimes[j] })
	changeTime := changeTimes[len(changeTimes)/2]
	skipped := "dumped"
	if same["source.db.unchanged"] != "" {
		skipped = "dump skipped: unchanged by " + same["source.db.unchanged"]
	}
	fmt.Printf("dump %s; pg_dump %v, first dm commit %v (medians of %d fresh nodes), unchanged %v (%s), after a 1%% change %v (median); store after 12 commits %s; pg_dump -Fc %s\n",
		human(dumpSize), pgDumpTime.Round(time.Millisecond), firstTime.Round(time.Millisecond), firstRuns, sameTime.Round(time.Millisecond), skipped,
		changeTime.Round(time.Millisecond), human(storeSize), human(int64(fc.Len())))
	v := newVerdicts("pg")
	r := medianF(firstRatios)
	v.row("dm commit time / pg_dump to /dev/null", r, "<= 1.3", r <= 1.3)
	r = medianF(busyRatios)
	v.row("pg_dump beside one busy thread / pg_dump (the machine)", r, "(info)", true)
	r = sameTime.Seconds() / pgDumpTime.Seconds()
	v.row("unchanged re-commit time / pg_dump", r, "<= 1.3", r <= 1.3)
	r = changeTime.Seconds() / pgDumpTime.Seconds()
	v.row("commit after a 1% change time / pg_dump (rows out of order)", r, "(info)", true)
	r = float64(num(same, "new_bytes_stored")) / float64(dumpSize)
	v.row("unchanged re-commit stored bytes / dump", r, "~0", r < 0.01)
	r = float64(changeAdded[len(changeAdded)/2]) / float64(dumpSize)
	v.row("1% of accounts updated: stored bytes / dump", r, "< 0.05", r < 0.05)
	r = float64(storeSize) / float64(10*fc.Len())
	v.row("store after 10 changes / 10 pg_dump -Fc", r, "< 0.25", r < 0.25)
	fmt.Printf("row diff of two commits after a 1%% update: dm diff --stat %v, pg_dump %v (medians of %d)\n", diffTime.Round(time.Millisecond), diffDump.Round(time.Millisecond), firstRuns)
	v.row("row diff of two commits (1% of accounts updated) / pg_dump", diffRatio, "<= 1", diffRatio <= 1)

	// The realistic change: random rows, text that does not compress to
	// nothing.
	const pgText = "substr(md5(random()::text) || md5(random()::text) || md5(random()::text), 1, 84)"
	fmt.Printf("filling pgbench_accounts.filler with random text...\n")
	for _, q := range []string{"UPDATE pgbench_accounts SET filler = " + pgText, "VACUUM pgbench_accounts"} {
		if err := pg.sql("bench", q); err != nil {
			return err
		}
	}
	if _, _, err := commit("random text"); err != nil {
		return err
	}
	var randAdded []int64
	var randRatios []float64
	var randDump int64
	for i := 0; i < 3; i++ {
		if err := pg.sql("bench", fmt.Sprintf("UPDATE pgbench_accounts SET abalance = abalance + 1, filler = %s WHERE aid IN (SELECT 1 + floor(random() * %d)::int FROM generate_series(1, %d))", pgText, accounts, accounts/100)); err != nil {
			return err
		}
		var d, c time.Duration
		var m map[string]string
		steps := []func() error{
			func() (err error) { d, err = timed(pgDump); return err },
			func() (err error) { c, m, err = commit(fmt.Sprint("random 1% ", i)); return err },
		}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		randAdded = append(randAdded, num(m, "new_bytes_stored"))
		randDump = num(m, "source.db.dump_bytes")
		randRatios = append(randRatios, c.Seconds()/d.Seconds())
	}
	sort.Slice(randAdded, func(i, j int) bool { return randAdded[i] < randAdded[j] })
	fmt.Printf("random 1%% of accounts updated (random text): dump %s, stored per commit %s (median of 3)\n", human(randDump), human(randAdded[1]))
	r = float64(randAdded[1]) / float64(randDump)
	v.row("random 1% of accounts updated: stored bytes / dump", r, "(info)", true)
	r = medianF(randRatios)
	v.row("commit after random 1% updates time / pg_dump", r, "(info)", true)
	return v.flush()
}

// besideBusyThread times f while one thread of this process spins: the
// least a consumer that does CPU work beside a dump tool costs it on a
// machine whose cores slow each other down.
func besideBusyThread(f func() error) (time.Duration, error) {
	stop := make(chan struct{})
	spinning := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		close(spinning)
		for {
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	<-spinning
	defer close(stop)
	return timed(f)
}
