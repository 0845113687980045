package backendtest

// refBackend is a TEST HELPER, not a product backend: the simplest
// StorageBackend that can pass the suite (working state and commits are
// plain directory copies; a stream is a checksummed tar of the whole
// commit). It proves that the suite runs and passes on a correct
// implementation; mutants_test.go breaks it in one place at a time to prove
// that each check can fail.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/internal/guard"
	"github.com/dotmesh-io/dotmesh/backend/internal/recordfiles"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

func TestReferenceBackend(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("inside a mutant child process")
	}
	Run(t, func(t *testing.T) dotmesh.StorageBackend { return guardRef(newRefBackend(t.TempDir(), "")) })
}

// guardRef puts the reference behind the guard, as every product backend
// is opened (the mutants run without it: they break the reference's own
// checks).
func guardRef(r *refBackend) dotmesh.StorageBackend {
	g := guard.New(r, guard.Options{})
	return struct {
		*guard.Backend
		guard.RecordKeeper
	}{g, g.RecordKeeper()}
}

// Layout: <dir>/<dot>/<branch>/{work,commits/<id>}. A branch exists when
// its directory does; everything is made in a temporary directory and
// renamed into place so nothing is half-visible.
type refBackend struct {
	dir string
	mut string // mutation to apply (mutants_test.go); "" for none
	mu  sync.Mutex
}

func newRefBackend(dir, mut string) *refBackend { return &refBackend{dir: dir, mut: mut} }

var _ dotmesh.StorageBackend = (*refBackend)(nil)

func (r *refBackend) Name() string {
	if r.mut == "EmptyName" {
		return ""
	}
	return "reference"
}

func (r *refBackend) Close() error { return nil }

func (r *refBackend) validate(b dotmesh.BranchRef) error {
	if r.mut == "NoRefValidation" {
		return nil
	}
	return b.Validate()
}

func (r *refBackend) validateCommit(c dotmesh.CommitRef) error {
	if r.mut == "NoRefValidation" {
		return nil
	}
	return c.Validate()
}

func (r *refBackend) branchDir(b dotmesh.BranchRef) string {
	return filepath.Join(r.dir, string(b.Dot), b.Branch)
}
func (r *refBackend) workDir(b dotmesh.BranchRef) string {
	return filepath.Join(r.branchDir(b), "work")
}
func (r *refBackend) commitDir(c dotmesh.CommitRef) string {
	return filepath.Join(r.branchDir(c.BranchRef), "commits", string(c.ID))
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func (r *refBackend) needBranch(b dotmesh.BranchRef) error {
	if !exists(r.branchDir(b)) {
		return fmt.Errorf("%w: branch %s", dotmesh.ErrNotFound, b)
	}
	return nil
}

func (r *refBackend) needCommit(c dotmesh.CommitRef) error {
	if !exists(r.commitDir(c)) {
		return fmt.Errorf("%w: commit %s", dotmesh.ErrNotFound, c)
	}
	return nil
}

func (r *refBackend) lock() func() {
	r.mu.Lock()
	return r.mu.Unlock
}

func (r *refBackend) CreateBranch(ctx context.Context, b dotmesh.BranchRef, from *dotmesh.CommitRef) error {
	if err := r.validate(b); err != nil {
		return err
	}
	if from != nil {
		if err := r.validateCommit(*from); err != nil {
			return err
		}
	}
	defer r.lock()()
	if exists(r.branchDir(b)) && r.mut != "CreateTwiceOK" {
		return fmt.Errorf("%w: branch %s", dotmesh.ErrAlreadyExists, b)
	}
	tmp, err := os.MkdirTemp(filepath.Join(r.dir), ".tmp-branch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	switch {
	case from == nil || r.mut == "BranchIgnoresOrigin":
		err = os.Mkdir(filepath.Join(tmp, "work"), 0o755)
	case r.mut == "BranchSharesWorkingState":
		if err = r.needCommit(*from); err == nil {
			err = os.Symlink(r.workDir(from.BranchRef), filepath.Join(tmp, "work"))
		}
	default:
		if err = r.needCommit(*from); err == nil {
			err = r.copyTree(r.commitDir(*from), filepath.Join(tmp, "work"))
		}
	}
	if err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(tmp, "commits"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.branchDir(b)), 0o755); err != nil {
		return err
	}
	if r.mut == "CreateTwiceOK" && exists(r.branchDir(b)) {
		return nil
	}
	return os.Rename(tmp, r.branchDir(b))
}

func (r *refBackend) DeleteBranch(ctx context.Context, b dotmesh.BranchRef) error {
	if err := r.validate(b); err != nil {
		return err
	}
	defer r.lock()()
	if r.mut == "DeleteMissingBranchFails" {
		if err := r.needBranch(b); err != nil {
			return err
		}
	}
	if r.mut == "DeleteBranchKeepsCommits" {
		if err := os.RemoveAll(r.workDir(b)); err != nil {
			return err
		}
		return os.Rename(filepath.Join(r.branchDir(b), "commits"), filepath.Join(r.dir, ".kept-"+string(b.Dot)+"-"+b.Branch))
	}
	return os.RemoveAll(r.branchDir(b))
}

func (r *refBackend) Branches(ctx context.Context) ([]dotmesh.BranchRef, error) {
	defer r.lock()()
	var out []dotmesh.BranchRef
	dots, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, err
	}
	for _, d := range dots {
		if strings.HasPrefix(d.Name(), ".") {
			continue
		}
		brs, err := os.ReadDir(filepath.Join(r.dir, d.Name()))
		if err != nil {
			return nil, err
		}
		for _, br := range brs {
			out = append(out, dotmesh.BranchRef{Dot: dotmesh.DotID(d.Name()), Branch: br.Name()})
		}
	}
	return out, nil
}

func (r *refBackend) SubdotPath(ctx context.Context, b dotmesh.BranchRef, subdot string) (string, error) {
	if err := r.validate(b); err != nil {
		return "", err
	}
	if r.mut != "NoSubdotValidation" {
		if err := dotmesh.ValidateSubdot(subdot); err != nil {
			return "", err
		}
	}
	if r.mut == "MissingBranchCreated" && !exists(r.branchDir(b)) {
		if err := r.CreateBranch(ctx, b, nil); err != nil {
			return "", err
		}
	}
	if err := r.needBranch(b); err != nil {
		return "", err
	}
	p := r.workDir(b)
	if subdot == dotmesh.RootSubdot && r.mut != "RootNotParent" {
		return p, nil
	}
	p = filepath.Join(p, subdot)
	return p, os.MkdirAll(p, 0o755)
}

func (r *refBackend) Subdots(ctx context.Context, b dotmesh.BranchRef) ([]string, error) {
	if err := r.validate(b); err != nil {
		return nil, err
	}
	if err := r.needBranch(b); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(r.workDir(b))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && dotmesh.ValidateSubdot(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	if r.mut == "SubdotsMissesOne" && len(out) > 0 {
		out = out[1:]
	}
	return out, nil
}

func (r *refBackend) Usage(ctx context.Context, b dotmesh.BranchRef, head *dotmesh.CommitRef) (dotmesh.Usage, error) {
	if err := r.validate(b); err != nil {
		return dotmesh.Usage{}, err
	}
	if err := r.needBranch(b); err != nil {
		return dotmesh.Usage{}, err
	}
	work, err := readTree(r.workDir(b))
	if err != nil {
		return dotmesh.Usage{}, err
	}
	base := Tree{}
	if head != nil {
		if base, err = readTree(r.commitDir(*head)); err != nil {
			return dotmesh.Usage{}, err
		}
	}
	u := dotmesh.Usage{Size: treeSize(work)}
	for _, p := range maps2set(work, base) {
		w, c := work[p], base[p]
		if r.mut == "UsageIgnoresModes" {
			w.Mode, c.Mode = w.Mode.Type(), c.Mode.Type()
		}
		if len(DiffTrees(Tree{"x": w}, Tree{"x": c})) > 0 || (w.Mode == 0 && c.Mode == 0 && !bytes.Equal(w.Data, c.Data)) {
			u.Dirty = true
			u.DirtyBytes += int64(max(len(w.Data), len(c.Data)))
		}
	}
	switch r.mut {
	case "UsageAlwaysClean":
		u.Dirty, u.DirtyBytes = false, 0
	case "UsageAlwaysDirty":
		u.Dirty = true
	case "UsageNoDirtyBytes":
		u.DirtyBytes = 0
	case "UsageSizeZero":
		u.Size = 0
	}
	return u, nil
}

func (r *refBackend) Commit(ctx context.Context, c dotmesh.CommitRef) (map[string]string, error) {
	if err := r.validateCommit(c); err != nil {
		return nil, err
	}
	if r.mut == "CommitsNeedExclusiveAccess" {
		if !r.mu.TryLock() {
			return nil, fmt.Errorf("%w: backend busy", dotmesh.ErrInUse)
		}
		time.Sleep(50 * time.Millisecond)
	} else {
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	if err := r.needBranch(c.BranchRef); err != nil {
		return nil, err
	}
	if exists(r.commitDir(c)) {
		return nil, fmt.Errorf("%w: commit %s", dotmesh.ErrAlreadyExists, c)
	}
	tmp := filepath.Join(r.branchDir(c.BranchRef), ".tmp-commit")
	os.RemoveAll(tmp)
	var err error
	switch r.mut {
	case "CommitFirstSubdotOnly":
		err = os.Mkdir(tmp, 0o755)
		if ents, _ := os.ReadDir(r.workDir(c.BranchRef)); err == nil && len(ents) > 0 {
			err = r.copyTree(filepath.Join(r.workDir(c.BranchRef), ents[0].Name()), filepath.Join(tmp, ents[0].Name()))
		}
	case "CommitSubdotsOnly":
		err = os.Mkdir(tmp, 0o755)
		ents, _ := os.ReadDir(r.workDir(c.BranchRef))
		for _, e := range ents {
			if err == nil && e.IsDir() && dotmesh.ValidateSubdot(e.Name()) == nil {
				err = r.copyTree(filepath.Join(r.workDir(c.BranchRef), e.Name()), filepath.Join(tmp, e.Name()))
			}
		}
	default:
		err = r.copyTree(r.workDir(c.BranchRef), tmp)
	}
	if err != nil {
		return nil, err
	}
	return map[string]string{"kind": "copy"}, os.Rename(tmp, r.commitDir(c))
}

func (r *refBackend) Commits(ctx context.Context, b dotmesh.BranchRef) ([]dotmesh.CommitID, error) {
	if err := r.validate(b); err != nil {
		return nil, err
	}
	defer r.lock()()
	if err := r.needBranch(b); err != nil {
		return nil, err
	}
	dirs := []string{filepath.Join(r.branchDir(b), "commits")}
	if r.mut == "CommitsOfWholeDot" {
		dirs, _ = filepath.Glob(filepath.Join(r.dir, string(b.Dot), "*", "commits"))
	}
	if r.mut == "DeleteBranchKeepsCommits" {
		dirs = append(dirs, filepath.Join(r.dir, ".kept-"+string(b.Dot)+"-"+b.Branch))
	}
	var out []dotmesh.CommitID
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			out = append(out, dotmesh.CommitID(e.Name()))
		}
	}
	return out, nil
}

func (r *refBackend) Rollback(ctx context.Context, b dotmesh.BranchRef, c dotmesh.CommitRef) error {
	if err := r.validate(b); err != nil {
		return err
	}
	if err := r.validateCommit(c); err != nil {
		return err
	}
	defer r.lock()()
	if err := r.needBranch(b); err != nil {
		return err
	}
	if r.mut == "RollbackOwnBranchOnly" {
		c.BranchRef = b
	}
	if err := r.needCommit(c); err != nil {
		return err
	}
	work := r.workDir(b)
	if r.mut == "RollbackKeepsNewFiles" {
		return r.copyTree(r.commitDir(c), work)
	}
	tmp := work + ".new"
	old := work + ".old"
	os.RemoveAll(tmp)
	if err := r.copyTree(r.commitDir(c), tmp); err != nil {
		return err
	}
	if err := os.Rename(work, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, work); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

func (r *refBackend) DeleteCommit(ctx context.Context, c dotmesh.CommitRef) error {
	if err := r.validateCommit(c); err != nil {
		return err
	}
	defer r.lock()()
	if r.mut == "DeleteMissingCommitFails" {
		if err := r.needCommit(c); err != nil {
			return err
		}
	}
	return os.RemoveAll(r.commitDir(c))
}

// Stream: "REFSTRM1" | length (8) | tar | sha256 of everything before it.
const streamMagic = "REFSTRM1"

func (r *refBackend) Send(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, w io.Writer) error {
	if err := r.validateCommit(target); err != nil {
		return err
	}
	if base != nil {
		if err := r.validateCommit(*base); err != nil {
			return err
		}
	}
	defer r.lock()()
	if err := r.needCommit(target); err != nil {
		if r.mut == "SendMissingOK" {
			return nil
		}
		return err
	}
	if base != nil {
		if err := r.needCommit(*base); err != nil {
			return err
		}
	}
	var body bytes.Buffer
	if err := writeTar(&body, r.commitDir(target)); err != nil {
		return err
	}
	var msg bytes.Buffer
	msg.WriteString(streamMagic)
	binary.Write(&msg, binary.BigEndian, uint64(body.Len()))
	msg.Write(body.Bytes())
	sum := sha256.Sum256(msg.Bytes())
	msg.Write(sum[:])
	_, err := w.Write(msg.Bytes())
	return err
}

func (r *refBackend) Receive(ctx context.Context, target dotmesh.CommitRef, base *dotmesh.CommitRef, rd io.Reader) error {
	if err := r.validateCommit(target); err != nil {
		return err
	}
	if base != nil {
		if err := r.validateCommit(*base); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil && r.mut != "ReceiveIgnoresContext" {
		return err
	}
	data, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	defer r.lock()()
	if base != nil && r.mut != "ReceiveIgnoresBase" {
		if err := r.needCommit(*base); err != nil {
			return fmt.Errorf("incremental stream needs base commit: %w", err)
		}
	}
	corrupt := func(why string) error { return fmt.Errorf("%w: stream for %s: %s", dotmesh.ErrCorrupt, target, why) }
	var body []byte
	if r.mut == "ReceiveUnverifiedInPlace" || r.mut == "ReceiveUnverified" {
		if len(data) < 16 {
			return corrupt("too short")
		}
		body = data[16:]
	} else {
		if len(data) < 16+sha256.Size || string(data[:8]) != streamMagic {
			return corrupt("too short or bad magic")
		}
		n := binary.BigEndian.Uint64(data[8:16])
		if uint64(len(data)) != 16+n+sha256.Size {
			return corrupt("wrong length")
		}
		if sum := sha256.Sum256(data[:16+n]); !bytes.Equal(sum[:], data[16+n:]) {
			return corrupt("checksum mismatch")
		}
		body = data[16 : 16+n]
	}
	bdir := r.branchDir(target.BranchRef)
	if err := os.MkdirAll(filepath.Join(bdir, "commits"), 0o755); err != nil {
		return err
	}
	dst := filepath.Join(bdir, ".tmp-receive")
	if r.mut == "ReceiveUnverifiedInPlace" {
		dst = r.commitDir(target)
	}
	os.RemoveAll(dst)
	if err := readTar(bytes.NewReader(body), dst); err != nil {
		os.RemoveAll(filepath.Join(bdir, ".tmp-receive"))
		return corrupt(err.Error())
	}
	if dst != r.commitDir(target) {
		if err := os.Rename(dst, r.commitDir(target)); err != nil {
			return err
		}
	}
	// Like zfs receive: a branch new to this node gets the commit as its
	// working state.
	if !exists(r.workDir(target.BranchRef)) {
		return r.copyTree(r.commitDir(target), r.workDir(target.BranchRef))
	}
	return nil
}

// copyTree copies src to the new directory dst like cp -a (modes, symlinks
// as links, empty directories); mutants break one of these.
func (r *refBackend) copyTree(src, dst string) error {
	type dirMode struct {
		path string
		mode fs.FileMode
	}
	var dirs []dirMode
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Type() == fs.ModeSymlink && r.mut == "FollowsSymlinks" {
			if fi, err = os.Stat(p); err != nil {
				return nil // dangling: dropped
			}
			if fi.IsDir() {
				return r.copyTree(p+"/", out)
			}
		}
		mode := fi.Mode().Perm()
		if r.mut == "LosesModes" {
			mode = 0o755
			if !fi.IsDir() {
				mode = 0o644
			}
		}
		switch fi.Mode().Type() {
		case fs.ModeDir:
			if r.mut == "DropsEmptyDirs" && p != src {
				if ents, _ := os.ReadDir(p); len(ents) == 0 {
					return nil
				}
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirMode{out, mode})
		case fs.ModeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			os.Remove(out)
			return os.Symlink(target, out)
		case 0:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if r.mut == "TruncatesLargeFiles" && len(data) > 16<<20 {
				data = data[:16<<20]
			}
			os.Remove(out)
			if err := os.WriteFile(out, data, 0o600); err != nil {
				return err
			}
			return os.Chmod(out, mode)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
	}
	return nil
}

func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode().Type() == fs.ModeSymlink {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// readTar extracts as it reads, so a broken stream leaves a partial tree
// behind (which Receive must then not make visible).
func readTar(rd io.Reader, dst string) error {
	dirModes := Tree{}
	var dirs []string
	tr := tar.NewReader(rd)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !filepath.IsLocal(hdr.Name) {
			return fmt.Errorf("bad path %q in stream", hdr.Name)
		}
		e := Entry{Mode: hdr.FileInfo().Mode() & (fs.ModeType | fs.ModePerm)}
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			e = Symlink(hdr.Linkname)
		case tar.TypeReg:
			if e.Data, err = io.ReadAll(tr); err != nil {
				return err
			}
		case tar.TypeDir:
			dirModes[hdr.Name] = e
			dirs = append(dirs, hdr.Name)
			e = Dir(0o700) // writable until its children are in
		}
		if err := writeTree(dst, Tree{hdr.Name: e}); err != nil {
			return err
		}
	}
	for _, d := range slices.Backward(dirs) {
		if err := os.Chmod(filepath.Join(dst, d), dirModes[d].Mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}

var _ dotmesh.RecordKeeper = (*refBackend)(nil)

// The reference keeps registry records as the files backend does, in
// <dir>/.records (dot-prefixed: not a dot of its layout).
func (r *refBackend) KeepRecords(ctx context.Context, dot dotmesh.DotID, recs map[string][]byte) error {
	if err := guard.CheckRecords(dot, recs); err != nil {
		return err
	}
	return recordfiles.New(filepath.Join(r.dir, ".records")).KeepRecords(ctx, dot, recs)
}

func (r *refBackend) Records(ctx context.Context) (map[dotmesh.DotID]map[string][]byte, error) {
	return recordfiles.New(filepath.Join(r.dir, ".records")).Records(ctx)
}
