package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"
)

// TransferOptions tune Push, Pull and Clone.
type TransferOptions struct {
	// RemoteDot names the dot on the peer; empty means the same name.
	RemoteDot DotName
	// RemoteName is the peer's name in the client config; when set, a
	// successful transfer records RemoteDot as the dot's upstream there.
	RemoteName string
	// StashOnDivergence moves the receiving side's diverged commits to a
	// new branch <branch>-DIVERGED-<UTC time> instead of refusing.
	StashOnDivergence bool
	// Neutral forces the backend-neutral stream even between nodes with
	// the same backend.
	Neutral bool
	// Progress, when set, is called as data flows (from one goroutine).
	Progress func(Progress)
}

// Progress reports a running operation: a transfer (Commit, Index,
// Commits set) or one phase of a long local operation (Phase set; see
// WithProgress).
type Progress struct {
	// Phase names what runs now ("dumping db", "hashing", "writing",
	// "finishing"...); empty for a transfer's sending of streams.
	Phase   string   `json:"phase,omitempty"`
	Commit  CommitID `json:"commit,omitempty"`
	Index   int      `json:"index"`   // 1-based number of the commit being sent
	Commits int      `json:"commits"` // commits to send in all
	Bytes   int64    `json:"bytes"`   // bytes done so far: stream bytes of all commits, or of the phase
	// Total estimates the bytes of the whole transfer (or phase); 0 when
	// unknown.
	Total int64 `json:"total"`
}

// TransferResult summarises a transfer.
type TransferResult struct {
	Dot     string   `json:"dot"`
	Branch  string   `json:"branch"`
	Head    CommitID `json:"head,omitempty"`
	Commits int      `json:"commits"`           // commits whose data was sent
	Skipped int      `json:"skipped,omitempty"` // already at the receiver (resume)
	Bytes   int64    `json:"bytes"`             // stream bytes sent
	// ObjectsHeld counts objects of the sent commits that the receiver
	// held already, so their streams left them out (have/want: dump).
	ObjectsHeld int           `json:"objects_held,omitempty"`
	Format      string        `json:"format,omitempty"`  // stream format used
	UpToDate    bool          `json:"up_to_date"`        // nothing to do
	Behind      int           `json:"behind,omitempty"`  // receiver is this many commits ahead
	Stashed     string        `json:"stashed,omitempty"` // branch holding the receiver's diverged commits
	Created     bool          `json:"created,omitempty"` // the receiver got a new dot or branch
	Duration    time.Duration `json:"duration_ns"`
	// Tags names the tags the receiver made; SkippedTags the sender's
	// tags it has at another commit (or as a branch name) and kept.
	Tags        []string `json:"tags,omitempty"`
	SkippedTags []string `json:"skipped_tags,omitempty"`
}

// Push sends branch (the current one when empty) of dot to the peer
// behind t: the commits the peer lacks, then moves the peer's branch.
func (n *Node) Push(ctx context.Context, dot DotName, branch string, t Transport, opts TransferOptions) (res *TransferResult, err error) {
	done := n.begin(OpPush)
	defer func() { done(OpEvent{Err: err, Transfer: res}) }()
	d, err := n.Dot(ctx, dot)
	if err != nil {
		return nil, err
	}
	if branch == "" {
		branch = d.Current
	}
	remote := remoteDot(dot, opts)
	res, err = runTransfer(ctx, LocalTransport(n), dot, t, remote, branch, "the remote", opts)
	if err != nil {
		return nil, err
	}
	return res, n.recordUpstream(ctx, dot, remote, opts.RemoteName)
}

// Pull fetches branch (the current one when empty) of dot from the peer
// behind t into the existing local dot.
func (n *Node) Pull(ctx context.Context, dot DotName, branch string, t Transport, opts TransferOptions) (res *TransferResult, err error) {
	done := n.begin(OpPull)
	defer func() { done(OpEvent{Err: err, Transfer: res}) }()
	d, err := n.Dot(ctx, dot)
	if err != nil {
		return nil, fmt.Errorf("%w (use clone to fetch a dot this node lacks)", err)
	}
	if branch == "" {
		branch = d.Current
	}
	remote := remoteDot(dot, opts)
	res, err = runTransfer(ctx, t, remote, LocalTransport(n), dot, branch, "this node", opts)
	if err != nil {
		return nil, err
	}
	return res, n.recordUpstream(ctx, dot, remote, opts.RemoteName)
}

// Clone fetches branch (master when empty) of the peer's dot
// opts.RemoteDot (default: dot) as the new local dot dot. Re-running an
// interrupted clone resumes it.
func (n *Node) Clone(ctx context.Context, dot DotName, branch string, t Transport, opts TransferOptions) (res *TransferResult, err error) {
	done := n.begin(OpClone)
	defer func() { done(OpEvent{Err: err, Transfer: res}) }()
	if err := dot.ValidateNew(); err != nil {
		return nil, err
	}
	if _, err := n.Dot(ctx, dot); err == nil {
		return nil, fmt.Errorf("%w: dot %s exists here already; pull into it, or clone under another name", ErrAlreadyExists, dot)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if branch == "" {
		branch = DefaultBranch
	}
	remote := remoteDot(dot, opts)
	res, err = runTransfer(ctx, t, remote, LocalTransport(n), dot, branch, "this node", opts)
	if err != nil {
		return nil, err
	}
	return res, n.recordUpstream(ctx, dot, remote, opts.RemoteName)
}

func remoteDot(local DotName, opts TransferOptions) DotName {
	if opts.RemoteDot.Name == "" {
		return local
	}
	if opts.RemoteDot.Namespace == "" {
		opts.RemoteDot.Namespace = DefaultNamespace
	}
	return opts.RemoteDot
}

// recordUpstream remembers which dot of remote this dot transfers with.
func (n *Node) recordUpstream(ctx context.Context, dot, remote DotName, remoteName string) error {
	if remoteName == "" {
		return nil
	}
	if err := ValidateName("remote", remoteName); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		d, rev, err := n.reg.dotByName(ctx, dot)
		if err != nil {
			return err
		}
		if d.Upstreams[remoteName] == remote.String() {
			return nil
		}
		if d.Upstreams == nil {
			d.Upstreams = map[string]string{}
		}
		d.Upstreams[remoteName] = remote.String()
		_, err = n.reg.putDot(ctx, d, rev)
		if !errors.Is(err, ErrConflict) || attempt == 5 {
			return err
		}
	}
}

// runTransfer moves branch from src to dst; dstWhere names dst for
// messages. The plan: compare histories, refuse a dirty or diverged
// receiver before sending anything, send the missing commits oldest
// first, each incremental from the newest ancestor the receiver has, then
// Finish on the receiver (which checks again, atomically).
func runTransfer(ctx context.Context, src Transport, srcDot DotName, dst Transport, dstDot DotName, branch, dstWhere string, opts TransferOptions) (*TransferResult, error) {
	start := time.Now()
	if err := ValidateName("branch", branch); err != nil {
		return nil, err
	}
	if res, done, err := pushDirectGuess(ctx, src, srcDot, dst, dstDot, branch, opts); done {
		if res != nil {
			res.Duration = time.Since(start)
		}
		return res, err
	}
	// Both sides are asked at once (one of them is usually a round trip
	// to a peer); the sender's answer is judged first, so the errors are
	// those of asking in turn. The sender's working state plays no part:
	// only the receiver's dirty check guards data, so it is not asked for.
	// Of the receiver's history only the ids, parents and Pruned marks
	// are read below (BriefHistory); the sender's commits travel whole.
	stateCtx, cancelState := context.WithCancel(ctx)
	defer cancelState()
	type stateAnswer struct {
		st  *TransferState
		err error
	}
	toCh := make(chan stateAnswer, 1)
	go func() {
		st, err := dst.State(stateCtx, dstDot, branch, StateOptions{BriefHistory: true})
		toCh <- stateAnswer{st, err}
	}()
	from, err := src.State(ctx, srcDot, branch, StateOptions{SkipUsage: true})
	if err == nil && (!from.Exists || from.Branch == nil) {
		err = fmt.Errorf("%w: dot %s has no branch %s on the sending side", ErrNotFound, srcDot, branch)
	} else if err == nil && len(from.History) == 0 {
		err = fmt.Errorf("%w: branch %s of %s has no commits to transfer; commit first", ErrInvalidArgument, branch, srcDot)
	}
	if err != nil {
		cancelState()
		<-toCh // nothing of the receiver's request outlives the call
		return nil, err
	}
	ta := <-toCh
	if ta.err != nil {
		return nil, ta.err
	}
	to := ta.st
	if err := newNamesValid(to, dstDot, branch); err != nil {
		return nil, err
	}
	res := &TransferResult{Dot: dstDot.String(), Branch: branch, Head: from.Branch.Head}
	defer func() { res.Duration = time.Since(start) }()
	if !to.AcceptsTags {
		from.Tags = nil // a receiver that predates tags refuses them
	}

	srcHas := make(map[CommitID]bool, len(from.History))
	for _, c := range from.History {
		srcHas[c.ID] = true
	}
	dstHas := make(map[CommitID]bool, len(to.Have))
	for _, id := range to.Have {
		dstHas[id] = true
	}
	var oldHead CommitID
	if to.Branch != nil {
		oldHead = to.Branch.Head
	}
	switch {
	case oldHead == from.Branch.Head:
		res.UpToDate = true
		if !missingTags(from.Tags, to.Tags) {
			return res, nil
		}
		// Only tags to bring: Finish makes them and moves nothing.
		fin, err := dst.Finish(ctx, dstDot, branch, FinishRequest{Head: oldHead, OldHead: oldHead, Tags: from.Tags})
		if err != nil {
			return nil, err
		}
		res.Tags, res.SkippedTags = fin.Tags, fin.SkippedTags
		return res, nil
	case oldHead != "" && !srcHas[oldHead]:
		dstHist := make(map[CommitID]bool, len(to.History))
		for _, c := range to.History {
			dstHist[c.ID] = true
		}
		if dstHist[from.Branch.Head] {
			// The receiver is ahead: nothing to send, nothing to change.
			res.UpToDate = true
			for i := len(to.History) - 1; i >= 0 && to.History[i].ID != from.Branch.Head; i-- {
				res.Behind++
			}
			return res, nil
		}
		start := from.History[0]
		// A history pruned here may still lead to oldHead through start's
		// parent when the receiver holds it: the receiver's Finish decides.
		shallowLink := start.Parent != "" && !srcHas[start.Parent] && dstHas[start.Parent]
		if !opts.StashOnDivergence && !shallowLink {
			var common CommitID
			for i := len(from.History) - 1; i >= 0; i-- {
				if dstHist[from.History[i].ID] {
					common = from.History[i].ID
					break
				}
			}
			if common == "" && start.Parent != "" {
				return nil, prunedDivergedError(dstDot, branch, start, oldHead)
			}
			return nil, divergedError(dstDot, branch, common)
		}
	}
	if to.Branch != nil && to.Usage.Dirty {
		return nil, dirtyError(dstDot, branch, to.Usage, dstWhere)
	}

	format := FormatNative + from.Backend
	// A new dot gets the receiver's default backend (to.Backend), so a
	// push from a laptop's files to a zfs node lands on zfs.
	if opts.Neutral || to.Backend != from.Backend {
		format = FormatNeutral
	}
	res.Format = format
	var todo []Commit
	var total int64
	for _, c := range from.History[shallowStart(from.History, to.History):] {
		if dstHas[c.ID] {
			if c.ID != oldHead && !inList(to.History, c.ID) {
				res.Skipped++
			}
			continue
		}
		// The oldest commit of a pruned history goes whole, marked so the
		// receiver takes it without its parent (newestHeld finds no base).
		c.Pruned = c.Parent != "" && !srcHas[c.Parent]
		todo = append(todo, c)
		total += estimate(c)
	}
	var moved atomic.Int64
	// The last commit's stream carries the Finish to a peer that can take
	// it (FinishAlong): one round trip less.
	along := &FinishAlong{Req: FinishRequest{Head: from.Branch.Head, OldHead: oldHead, Stash: opts.StashOnDivergence, Tags: from.Tags}}
	reported := false // the finishing phase
	if opts.Progress != nil {
		along.Sent = func() {
			finishingProgress(opts.Progress, len(todo), moved.Load())
			reported = true
		}
	}
	for i, c := range todo {
		var base *CommitID
		if format != FormatNeutral || to.AcceptsNeutralBase {
			base = newestHeld(from.History, c, dstHas)
		}
		report := func() {
			if opts.Progress != nil {
				m, tot := moved.Load(), total
				if tot > 0 && m > tot { // an estimate too low never shows more than 100%
					tot = m
				}
				opts.Progress(Progress{Commit: c.ID, Index: i + 1, Commits: len(todo), Bytes: m, Total: tot})
			}
		}
		report()
		// A resumed transfer sends only the objects the receiver lacks:
		// the bar measures against those, not the whole commit.
		remaining := func(held, send int) {
			if est := estimate(c); held > 0 && est > 0 {
				total -= est - est*int64(send)/int64(held+send)
			}
		}
		cf := format
		if format == FormatNeutral && base != nil && from.AcceptsNeutralPatch && to.AcceptsNeutralPatch {
			cf = FormatNeutralPatch // changed files as patches against the base's
		}
		cctx := ctx
		if i == len(todo)-1 {
			cctx = WithFinishAlong(ctx, along)
		}
		held, err := copyCommitNegotiated(cctx, src, srcDot, dst, dstDot, branch, c, base, cf, &moved, report, remaining)
		if err != nil {
			return nil, fmt.Errorf("%w (%d of %d commits had arrived; what arrived is kept, so running the same command again resumes)", err, i+res.Skipped, len(todo)+res.Skipped)
		}
		res.ObjectsHeld += held
		dstHas[c.ID] = true
		res.Commits++
	}
	res.Bytes = moved.Load()
	if !along.Answered && opts.Progress != nil {
		if !reported {
			finishingProgress(opts.Progress, len(todo), res.Bytes)
		}
		// A local finish (pull, clone) reports its restore too.
		ctx = WithProgress(ctx, opts.Progress)
	}
	return finishTransfer(ctx, dst, dstDot, branch, along, res)
}

// finishTransfer ends a transfer whose last commit went with along: the
// receiver's answer to the Finish that rode on it, or, when the receiver
// did not take it along, the Finish asked now.
func finishTransfer(ctx context.Context, dst Transport, dstDot DotName, branch string, along *FinishAlong, res *TransferResult) (*TransferResult, error) {
	if along.Answered {
		if along.Err != nil {
			return nil, along.Err
		}
		return finished(res, along.Res), nil
	}
	fin, err := dst.Finish(ctx, dstDot, branch, along.Req)
	if err != nil {
		return nil, err
	}
	return finished(res, fin), nil
}

// finishingProgress reports that everything is sent: the bar ends at
// 100% (the estimate was only one), then shows the receiver's finish step
// as a phase.
func finishingProgress(progress func(Progress), commits int, bytes int64) {
	progress(Progress{Index: commits, Commits: commits, Bytes: bytes, Total: bytes})
	progress(Progress{Phase: PhaseFinishing, Index: commits, Commits: commits, Bytes: bytes, Total: bytes})
}

// finished completes res with what the receiver's Finish did.
func finished(res *TransferResult, fin *FinishResult) *TransferResult {
	res.Stashed, res.Created = fin.Stashed, fin.Created
	res.Tags, res.SkippedTags = fin.Tags, fin.SkippedTags
	return res
}

// missingTags reports whether the receiver lacks a tag of the sender's
// by name (one at another commit counts: Finish reports it as skipped).
func missingTags(from, to []Tag) bool {
	have := make(map[string]CommitID, len(to))
	for _, t := range to {
		have[t.Name] = t.Commit
	}
	for _, t := range from {
		if c, ok := have[t.Name]; !ok || c != t.Commit {
			return true
		}
	}
	return false
}

// copyCommit streams one whole commit from src to dst, counting bytes.
func copyCommit(ctx context.Context, src Transport, srcDot DotName, dst Transport, dstDot DotName, branch string, c Commit, base *CommitID, format string, moved *atomic.Int64, report func()) error {
	if k, handled, err := sendDirect(ctx, src, srcDot, dst, dstDot, branch, c, base, format); handled || err != nil {
		if err != nil {
			return fmt.Errorf("transferring commit %s: %w", c.ID, err)
		}
		moved.Add(k)
		if report != nil {
			report()
		}
		return nil
	}
	ctx, cancel := context.WithCancel(streamContext(ctx, src, dst))
	defer cancel()
	rc, err := src.FetchCommit(ctx, srcDot, c.ID, base, format)
	if err != nil {
		return fmt.Errorf("reading commit %s: %w", c.ID, err)
	}
	defer rc.Close()
	cr := &countingReader{r: rc, n: moved, every: 1 << 20, report: report}
	if err := dst.SendCommit(ctx, dstDot, branch, c, base, format, cr); err != nil {
		return fmt.Errorf("transferring commit %s: %w", c.ID, err)
	}
	return nil
}

// streamContext is ctx, marked WithInProcessStream when both ends of a
// commit's copy run in this process, and able to carry chunks from the
// sender to the receiving backend (ChunkStager).
func streamContext(ctx context.Context, src, dst Transport) context.Context {
	if inProcess(src) && inProcess(dst) {
		return withChunkRelay(WithInProcessStream(ctx))
	}
	return ctx
}

// newestHeld returns the nearest ancestor of c in history (the sender's)
// that the receiver holds too: an ancestor gc removed here cannot be a
// base, even if the receiver has it.
func newestHeld(history []Commit, c Commit, held map[CommitID]bool) *CommitID {
	byID := make(map[CommitID]*Commit, len(history))
	for i := range history {
		byID[history[i].ID] = &history[i]
	}
	for id := c.Parent; id != ""; {
		p, ok := byID[id]
		if !ok {
			return nil
		}
		if held[id] {
			return &id
		}
		id = p.Parent
	}
	return nil
}

// estimate guesses a commit's stream size from what its backend reported.
func estimate(c Commit) int64 {
	for _, k := range []string{"new_bytes_stored", "stream_bytes", "written", "bytes"} {
		if v, err := strconv.ParseInt(c.Info[k], 10, 64); err == nil && v >= 0 {
			return v
		}
	}
	return 0
}

func inList(list []Commit, id CommitID) bool {
	for _, c := range list {
		if c.ID == id {
			return true
		}
	}
	return false
}

type countingReader struct {
	r       io.Reader
	n       *atomic.Int64
	pending int64
	every   int64
	report  func()
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.count(int64(k), err)
	return k, err
}

func (c *countingReader) count(k int64, err error) {
	c.n.Add(k)
	c.pending += k
	if c.pending >= c.every || err != nil {
		c.pending = 0
		c.report()
	}
}

// newNamesValid checks the names a transfer is about to make on the
// receiver (its dot, its branch) as new names, before anything is sent.
func newNamesValid(to *TransferState, dot DotName, branch string) error {
	if !to.Exists {
		if err := dot.ValidateNew(); err != nil {
			return err
		}
	}
	if to.Branch == nil {
		return ValidateNewName("branch", branch)
	}
	return nil
}
