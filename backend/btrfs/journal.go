//go:build linux && cgo

package btrfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
	"golang.org/x/sys/unix"
)

// journalXattr prefixes the names of the lock file's xattrs that hold
// journaled commits (dotmesh.CommitJournal), one per commit id.
const journalXattr = "trusted.dotmesh.commit."

// JournalCommit implements dotmesh.CommitJournal: an xattr on the root's
// lock file. Setting it joins the file system's running transaction, and
// the commit's snapshot ioctl commits that transaction (or a later one)
// before it returns: the record is durable when the snapshot is, with no
// sync of its own. A record whose snapshot never came is dropped at the
// next open by the Node (Journaled says it is not stored). The value is
// the dot, the branch, the head the commit must differ from (or nothing)
// and rec, the first three ended by a zero byte.
func (b *Backend) JournalCommit(ctx context.Context, c dotmesh.CommitRef, head *dotmesh.CommitRef, rec []byte) error {
	var h dotmesh.CommitID
	if head != nil {
		if head.BranchRef != c.BranchRef {
			return fmt.Errorf("%w: journaling commit %s against head %s of another branch", dotmesh.ErrInvalidArgument, c, head)
		}
		h = head.ID
	}
	v := make([]byte, 0, len(c.Dot)+len(c.Branch)+len(h)+3+len(rec))
	v = append(append(append(append(append(append(v, c.Dot...), 0), c.Branch...), 0), h...), 0)
	v = append(v, rec...)
	if err := unix.Fsetxattr(int(b.lock.Fd()), journalXattr+string(c.ID), v, 0); err != nil {
		return fmt.Errorf("journaling commit %s: %w", c, err)
	}
	return nil
}

// DropJournal implements dotmesh.CommitJournal.
func (b *Backend) DropJournal(ctx context.Context, c dotmesh.CommitRef) error {
	err := unix.Fremovexattr(int(b.lock.Fd()), journalXattr+string(c.ID))
	if err != nil && !errors.Is(err, unix.ENODATA) {
		return fmt.Errorf("dropping the journal record of commit %s: %w", c, err)
	}
	return nil
}

// Journaled implements dotmesh.CommitJournal.
func (b *Backend) Journaled(ctx context.Context) ([]dotmesh.JournaledCommit, error) {
	fd := int(b.lock.Fd())
	names, err := xattrNames(fd)
	if err != nil {
		return nil, fmt.Errorf("listing journaled commits: %w", err)
	}
	var out []dotmesh.JournaledCommit
	for _, name := range names {
		id, ok := strings.CutPrefix(name, journalXattr)
		if !ok {
			continue
		}
		v, err := xattrValue(fd, name)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading journaled commit %s: %w", id, err)
		}
		parts := bytes.SplitN(v, []byte{0}, 4)
		if len(parts) != 4 {
			b.log.WarnContext(ctx, "dropping a malformed commit journal record", "xattr", name)
			_ = unix.Fremovexattr(fd, name)
			continue
		}
		c := dotmesh.CommitRef{BranchRef: dotmesh.BranchRef{Dot: dotmesh.DotID(parts[0]), Branch: string(parts[1])}, ID: dotmesh.CommitID(id)}
		j, head := dotmesh.JournaledCommit{Commit: c, Record: parts[3]}, dotmesh.CommitID(parts[2])
		if c.Validate() == nil {
			if j.Stored, err = exists(b.snapPath(c)); err != nil {
				return nil, fmt.Errorf("journaled commit %s: %w", c, err)
			}
		}
		if j.Stored && head != "" {
			j.Stored = b.changedSinceHead(ctx, c, dotmesh.CommitRef{BranchRef: c.BranchRef, ID: head})
		}
		if j.Stored {
			j.Info = b.storedFacts(c)
		}
		out = append(out, j)
	}
	return out, nil
}

// changedSinceHead is CommitIfChanged's check again, for a commit a
// crash left between its snapshot and the deletion of an unchanged one:
// false only when the snapshot is known to equal head.
func (b *Backend) changedSinceHead(ctx context.Context, c, head dotmesh.CommitRef) bool {
	base, known := b.equalSince(ctx, c.BranchRef, head)
	if !known {
		return true
	}
	changed, err := changedSince(b.snapPath(c), base)
	return err != nil || changed
}

// xattrNames lists the names of fd's xattrs.
func xattrNames(fd int) ([]string, error) {
	for {
		n, err := unix.Flistxattr(fd, nil)
		if err != nil || n == 0 {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Flistxattr(fd, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range bytes.Split(buf[:n], []byte{0}) {
			if len(s) > 0 {
				names = append(names, string(s))
			}
		}
		return names, nil
	}
}

// xattrValue reads one xattr of fd.
func xattrValue(fd int, name string) ([]byte, error) {
	for {
		n, err := unix.Fgetxattr(fd, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		n, err = unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
