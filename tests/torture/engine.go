// Package torture is dotmesh's torture run, after OpenZFS's ztest and
// etcd's robustness tests: for a given time and seed it drives random
// operations (write, commit, reset, checkout, branch, delete branch, push,
// pull, clone, gc --keep, verify) through the real `dm` CLI against two or
// three real `dm serve` nodes on 127.0.0.x, SIGKILLs nodes at random
// moments (also in the middle of those operations), restarts them, and
// after every restart checks invariants against a model of what the nodes
// acknowledged:
//
//   - every acknowledged commit is in the log of its branch on every node
//     that acknowledged it (commit, or a transfer that returned), with the
//     same id and message everywhere, and restores exactly the tree that
//     was committed (content hashes kept by the model);
//   - no partial commit or transfer is visible: every commit shown was
//     asked for by the run, and a dot or branch exists only where an
//     acknowledged (or cut-off) operation made it;
//   - every working tree is wholly its head's committed state or the
//     changes the run wrote into it; an operation cut off by a kill leaves
//     the branch wholly before or wholly after it;
//   - `dm verify` is clean on every node;
//   - after `dm gc` a dry run finds nothing more to free.
//
// An operation cut off by a kill may or may not have happened: the next
// check accepts either state and adopts the one it finds. The run stops at
// the first violation; Run's error says what was seen and the seed, which
// replays the same operations and kill decisions (timing aside).
package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Classes are the operation classes, in the order they are reported.
var Classes = []string{"write", "commit", "reset", "checkout", "branch", "delete-branch", "push", "pull", "clone", "gc", "verify", "idle-kill"}

// Config is one torture run.
type Config struct {
	DM       string        // the dm binary
	Backend  string        // files, zfs or btrfs: where new dots live
	Nodes    int           // 2 or 3
	Duration time.Duration // how long to run operations
	Seed     uint64
	// Exclude names operation classes not to run (e.g. ones with known
	// open defects).
	Exclude map[string]bool
	// KillRate is the chance that an operation gets a SIGKILL of a node
	// it involves at a random moment (0.25 when zero; negative: never).
	KillRate float64
	// MaxFile bounds the size of one written file (default 2 MiB).
	MaxFile int
	// CheckEvery checks all nodes after this many operations even without
	// a kill (default 15).
	CheckEvery int
	Work       string    // a directory for nodes' data; a temp dir when ""
	Out        io.Writer // progress and the summary; os.Stdout when nil
}

// Violation is a broken invariant (as opposed to the run failing to run).
type Violation struct{ What string }

func (v *Violation) Error() string { return "VIOLATION: " + v.What }

func violationf(format string, a ...any) error { return &Violation{fmt.Sprintf(format, a...)} }

type classStats struct{ ok, refused, cut int }

type stats struct {
	ops, kills, interrupts, restarts, checks, contentChecks int
	byClass                                                 map[string]*classStats
}

// Engine runs one torture run.
type Engine struct {
	cfg      Config
	rng      *rand.Rand
	data     *rand.ChaCha8
	work     string
	env      []string
	nodes    []*node
	m        *model
	stats    stats
	opSeq    int
	checkSeq int
	killed   chan int                   // nodes killed by a kill timer during an operation
	trace    *os.File                   // every operation and kill, in the work directory
	took     map[string]time.Duration   // how long operations of a class take
	client   atomic.Pointer[os.Process] // the dm command running, for interrupts
}

// tracef writes one line to the run's trace (trace.log in the work dir).
func (e *Engine) tracef(format string, a ...any) {
	if e.trace != nil {
		fmt.Fprintf(e.trace, "%s op%d "+format+"\n", append([]any{time.Now().Format("15:04:05.000"), e.opSeq}, a...)...)
	}
}

// Run runs the torture run of cfg and prints its summary. It returns a
// *Violation (wrapped) on the first broken invariant.
func Run(ctx context.Context, cfg Config) (err error) {
	e, err := start(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := e.close(err != nil); cerr != nil && err == nil {
			err = cerr
		}
	}()
	err = e.loop(ctx)
	e.summary(err)
	return err
}

// start prepares the engine: nodes started, remotes known, one dot made
// on the first node.
func start(cfg Config) (*Engine, error) {
	if cfg.Nodes < 1 {
		cfg.Nodes = 3
	}
	if cfg.KillRate == 0 {
		cfg.KillRate = 0.25
	}
	if cfg.MaxFile <= 0 {
		cfg.MaxFile = 2 << 20
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 15
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Backend == "" {
		cfg.Backend = "files"
	}
	e := &Engine{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x746f72)), m: newModel(cfg.Nodes), killed: make(chan int, 8), took: map[string]time.Duration{}}
	var seedBytes [32]byte
	for k := range 4 {
		v := rand.New(rand.NewPCG(cfg.Seed, uint64(k))).Uint64()
		for j := range 8 {
			seedBytes[k*8+j] = byte(v >> (8 * j))
		}
	}
	e.data = rand.NewChaCha8(seedBytes)
	e.stats.byClass = map[string]*classStats{}
	for _, c := range Classes {
		e.stats.byClass[c] = &classStats{}
	}
	work := cfg.Work
	var err error
	if work == "" {
		if work, err = os.MkdirTemp("", "dm-torture-"); err != nil {
			return nil, err
		}
	}
	e.work = work
	if e.trace, err = os.Create(filepath.Join(work, "trace.log")); err != nil {
		return nil, err
	}
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "DOTMESH_") {
			e.env = append(e.env, kv)
		}
	}
	e.env = append(e.env, "HOME="+home, "DOTMESH_CONFIG="+filepath.Join(work, "config"))
	fmt.Fprintf(cfg.Out, "torture: seed %d, backend %s, %d nodes, %s, work %s\n", cfg.Seed, cfg.Backend, cfg.Nodes, cfg.Duration, work)
	for i := range cfg.Nodes {
		n, err := newNode(cfg.DM, work, fmt.Sprintf("n%d", i+1), fmt.Sprintf("127.0.0.%d", i+1), cfg.Backend)
		if err == nil {
			e.nodes = append(e.nodes, n)
			err = n.start(e.env)
		}
		if err == nil {
			r := e.run([]string{"remote", "add", n.name, "admin@" + n.addr}, "DOTMESH_PASSWORD="+n.key)
			err = r.err
		}
		if err != nil {
			e.close(true)
			return nil, err
		}
	}
	if r := e.dm(0, "init", "d0"); r.err != nil {
		e.close(true)
		return nil, r.err
	}
	e.m.nodes[0]["d0"] = &dotModel{Current: "master", Branches: map[string]*branchModel{"master": {Tree: emptyTree}}}
	return e, nil
}

// close stops the nodes and removes what they made; the work directory
// stays after a failure, for its logs.
func (e *Engine) close(failed bool) error {
	if e.trace != nil {
		e.trace.Close()
	}
	for _, n := range e.nodes {
		n.stop()
	}
	for _, n := range e.nodes {
		if n.undo != nil {
			n.undo()
		}
	}
	if failed {
		fmt.Fprintf(e.cfg.Out, "torture: nodes' data and logs kept in %s\n", e.work)
		return nil
	}
	return os.RemoveAll(e.work)
}

func (e *Engine) loop(ctx context.Context) error {
	end := time.Now().Add(e.cfg.Duration)
	sinceCheck := 0
	for time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := e.alive(); err != nil {
			return err
		}
		class := e.pick()
		e.opSeq++
		e.stats.ops++
		cut, err := e.runOp(class)
		if err != nil {
			return fmt.Errorf("op %d (%s): %w", e.opSeq, class, err)
		}
		sinceCheck++
		if cut || sinceCheck >= e.cfg.CheckEvery {
			why := fmt.Sprintf("op %d (%s)", e.opSeq, class)
			if cut {
				why += " and a restart"
			}
			if err := e.checkAll(why); err != nil {
				return err
			}
			sinceCheck = 0
		}
	}
	return e.checkAll("the last operation")
}

// pick chooses the next operation class, by weight.
func (e *Engine) pick() string {
	weights := map[string]int{"write": 12, "commit": 20, "reset": 8, "checkout": 7, "branch": 4, "delete-branch": 4,
		"push": 12, "pull": 8, "clone": 5, "gc": 6, "verify": 2, "idle-kill": 3}
	total := 0
	for _, c := range Classes {
		if !e.cfg.Exclude[c] {
			total += weights[c]
		}
	}
	if total == 0 {
		return "verify"
	}
	x := e.rng.IntN(total)
	for _, c := range Classes {
		if e.cfg.Exclude[c] {
			continue
		}
		if x < weights[c] {
			e.tracef("pick %s", c)
			return c
		}
		x -= weights[c]
	}
	return "verify"
}

// summary prints the seed and the figures of the run.
func (e *Engine) summary(err error) {
	w := e.cfg.Out
	fmt.Fprintf(w, "torture: seed %d backend %s: %d operations, %d kills, %d restarts, %d interrupted transfer commands, %d invariant checks (%d commit contents restored)\n",
		e.cfg.Seed, e.cfg.Backend, e.stats.ops, e.stats.kills, e.stats.restarts, e.stats.interrupts, e.stats.checks, e.stats.contentChecks)
	fmt.Fprintf(w, "  %-14s %6s %8s %9s\n", "class", "ok", "refused", "cut-off")
	for _, c := range Classes {
		s := e.stats.byClass[c]
		if e.cfg.Exclude[c] {
			fmt.Fprintf(w, "  %-14s excluded\n", c)
			continue
		}
		fmt.Fprintf(w, "  %-14s %6d %8d %9d\n", c, s.ok, s.refused, s.cut)
	}
	if err != nil {
		fmt.Fprintf(w, "torture: FAILED at op %d with seed %d (backend %s): %v\n", e.opSeq, e.cfg.Seed, e.cfg.Backend, err)
	} else {
		fmt.Fprintf(w, "torture: no violation (seed %d, backend %s)\n", e.cfg.Seed, e.cfg.Backend)
	}
}

// result is one dm command's outcome. err is set when dm could not run or
// exited non-zero; code is its exit status.
type result struct {
	out, stderr string
	code        int
	err         error
}

const dmTimeout = 3 * time.Minute

func (e *Engine) run(args []string, extraEnv ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), dmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.DM, args...)
	cmd.Env = append(append([]string{}, e.env...), extraEnv...)
	start := time.Now()
	defer func() { e.tracef("dm %s (%s)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond)) }()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Start()
	if err == nil {
		e.client.Store(cmd.Process)
		err = cmd.Wait()
		e.client.Store(nil)
	}
	r := result{out: out.String(), stderr: errb.String()}
	if err != nil {
		e.tracef("  -> %v: %s", err, oneLine(r.stderr))
	}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.code, r.err = -1, violationf("dm %s did not finish within %s (hung)", strings.Join(args, " "), dmTimeout)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		r.err = fmt.Errorf("dm %s: exit %d: %s", strings.Join(args, " "), r.code, oneLine(r.stderr))
	case err != nil:
		r.code, r.err = -1, err
	}
	return r
}

// dm runs dm against node i.
func (e *Engine) dm(i int, args ...string) result {
	return e.run(append([]string{"--remote", e.nodes[i].name}, args...))
}

func (e *Engine) dmJSON(i int, v any, args ...string) error {
	r := e.dm(i, append(args, "--json")...)
	if r.err != nil {
		return r.err
	}
	if err := json.Unmarshal([]byte(r.out), v); err != nil {
		return fmt.Errorf("dm %s --json on %s: %v in %q", strings.Join(args, " "), e.nodes[i].name, err, r.out)
	}
	return nil
}

func (e *Engine) path(i int, vol string) (string, error) {
	r := e.dm(i, "path", vol)
	if r.err != nil {
		return "", r.err
	}
	p := strings.TrimSpace(r.out)
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("dm path %s on %s printed %q", vol, e.nodes[i].name, p)
	}
	return p, nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// alive checks that no node has exited without being killed: a crash.
func (e *Engine) alive() error {
	for _, n := range e.nodes {
		if !n.running() {
			return violationf("node %s (pid %s) exited by itself (%v): %s", n.name, n.pid(), n.cmd.ProcessState, n.logTail(8))
		}
	}
	return nil
}

// restart starts killed node i again; a refusal is a violation (a dead
// node never blocks its own restart).
func (e *Engine) restart(i int) error {
	n := e.nodes[i]
	if err := n.start(e.env); err != nil {
		return violationf("restarting %s after SIGKILL: %v", n.name, err)
	}
	e.stats.restarts++
	return nil
}

// kill SIGKILLs node i now.
func (e *Engine) kill(i int) {
	e.nodes[i].kill()
	e.stats.kills++
}

// clientCut in an operation's involved list stands for the dm command
// itself: it gets SIGINT (a Ctrl-C) instead of a node getting SIGKILL.
const clientCut = -2

// withKill runs op of class; with the run's kill rate it SIGKILLs one of
// the nodes involved (or interrupts the dm command, for clientCut) at a
// random moment within about the time operations of the class take, so
// that most kills land in the middle of one. It returns which node was
// killed while op ran, after restarting it, clientCut, or -1 (none).
func (e *Engine) withKill(class string, involved []int, op func()) (int, error) {
	victim := -1
	var delay time.Duration
	if e.cfg.KillRate > 0 && e.rng.Float64() < e.cfg.KillRate {
		victim = involved[e.rng.IntN(len(involved))]
		span := e.took[class] * 5 / 4
		if span < 20*time.Millisecond {
			span = 200 * time.Millisecond
		}
		delay = time.Duration(e.rng.Int64N(int64(span)))
	}
	t0 := time.Now()
	defer func() {
		if victim == -1 {
			// A moving average of uninterrupted runs.
			e.took[class] = (3*e.took[class] + time.Since(t0)) / 4
		}
	}()
	var timer *time.Timer
	switch {
	case victim == clientCut:
		e.tracef("interrupt of the dm command planned in %s", delay)
		timer = time.AfterFunc(delay, func() {
			if p := e.client.Load(); p != nil {
				p.Signal(syscall.SIGINT)
			}
			e.killed <- victim
		})
	case victim >= 0:
		e.tracef("kill of %s planned in %s", e.nodes[victim].name, delay)
		timer = time.AfterFunc(delay, func() { e.nodes[victim].kill(); e.killed <- victim })
	}
	op()
	if timer == nil || timer.Stop() {
		victim = -1
		return -1, nil
	}
	<-e.killed
	if victim == clientCut {
		e.tracef("the dm command was interrupted")
		e.stats.interrupts++
		return victim, nil
	}
	e.tracef("%s was killed during the operation", e.nodes[victim].name)
	e.stats.kills++
	return victim, e.restart(victim)
}

// Configs turns command-line choices into one Config per backend; seed 0
// takes one from the clock.
func Configs(dm, backends, exclude string, d time.Duration, seed uint64, nodes int, killRate float64, maxFile int) ([]Config, error) {
	if nodes < 2 || nodes > 3 {
		return nil, fmt.Errorf("-nodes %d: use 2 or 3", nodes)
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	if killRate == 0 {
		killRate = -1
	}
	ex := map[string]bool{}
	for _, c := range strings.Split(exclude, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if !slices.Contains(Classes, c) {
			return nil, fmt.Errorf("-exclude %s: no such operation class; classes are %s", c, strings.Join(Classes, ","))
		}
		ex[c] = true
	}
	abs, err := filepath.Abs(dm)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("the dm binary %s is missing: run make build, or give -dm", dm)
	}
	var cfgs []Config
	for _, b := range strings.Split(backends, ",") {
		b = strings.TrimSpace(b)
		if b != "files" && b != "zfs" && b != "btrfs" {
			return nil, fmt.Errorf("-backends: unknown backend %q; use files, zfs, btrfs", b)
		}
		cfgs = append(cfgs, Config{DM: abs, Backend: b, Nodes: nodes, Duration: d, Seed: seed, Exclude: ex, KillRate: killRate, MaxFile: maxFile})
	}
	return cfgs, nil
}
