package dump

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// scanTree walks root in tree order (see lessPath) with lstat only and
// returns its entries, without chunks. Symlinks are never followed.
// Entries of other types (sockets, fifos, devices) come back with Type 0:
// commits skip them, restores remove them.
func scanTree(root string) ([]Entry, error) {
	var entries []Entry
	err := walkTree(root, func(e *Entry) error {
		entries = append(entries, *e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// walkTree calls fn with each entry under root in tree order, as
// scanTree returns them, holding only the directories on the way down:
// a commit of many files hashes and encodes them as they come instead
// of keeping an entry per file of the whole tree (for 500,000 small
// files that was most of the node's memory). fn may keep *e.
func walkTree(root string, fn func(e *Entry) error) error {
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		children, err := readDirStats(dir, rel)
		if err != nil {
			return err
		}
		for i := range children {
			c := &children[i]
			if err := fn(c); err != nil {
				return err
			}
			if c.Type == TypeDir {
				if err := walk(filepath.Join(dir, baseName(c.Path)), c.Path); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(root, "")
}

// readDirStats lstats the children of dir, sorted by name. Entries of
// unsupported types come back with Type 0. The directory is closed before
// the caller descends, so deep trees do not pile up descriptors.
func readDirStats(dir, rel string) ([]Entry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	sort.Strings(names)
	dfd := int(f.Fd())
	out := make([]Entry, 0, len(names))
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while we looked
			}
			return nil, fmt.Errorf("stat %s: %w", filepath.Join(dir, name), err)
		}
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		e := entryFromStat(p, &st)
		if e.Type == TypeSymlink {
			target, err := readlinkat(dfd, name)
			if err != nil {
				return nil, fmt.Errorf("read symlink %s: %w", filepath.Join(dir, name), err)
			}
			e.Target = target
		}
		out = append(out, e)
	}
	return out, nil
}

func readlinkat(dfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size > 64<<10 {
			return "", errors.New("symlink target too long")
		}
	}
}

// entryFromStat fills the metadata of an entry from lstat results; Type is
// 0 for unsupported file types.
func entryFromStat(path string, st *unix.Stat_t) Entry {
	e := Entry{
		Path:  path,
		Mode:  st.Mode & 0o7777,
		UID:   st.Uid,
		GID:   st.Gid,
		MTime: st.Mtim.Nano(),
		Dev:   uint64(st.Dev),
		Inode: st.Ino,
		CTime: st.Ctim.Nano(),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = TypeFile
		e.Size = st.Size
	case unix.S_IFDIR:
		e.Type = TypeDir
	case unix.S_IFLNK:
		e.Type = TypeSymlink
	}
	return e
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

// statMatches reports whether the file cur is unchanged since cached was
// recorded, judged by stat alone (size, mtime, ctime and inode), as restic
// and git do. ctime cannot be set by users, so a rewrite that restores
// size and mtime is still noticed.
func statMatches(cached, cur *Entry) bool {
	return cached != nil && cached.Type == TypeFile && cur.Type == TypeFile &&
		cached.Inode != 0 && cached.CTime != 0 &&
		cached.Inode == cur.Inode && cached.CTime == cur.CTime &&
		cached.MTime == cur.MTime && cached.Size == cur.Size
}

// forgetRacy clears the change cache of entries whose ctime is not older
// than fsNow, the filesystem's clock when their stat was taken: a write in
// the same timestamp tick would leave size, mtime and ctime as they are,
// so such files must be read again next time ("racily clean" in git).
func forgetRacy(entries []Entry, fsNow int64) {
	for i := range entries {
		forgetRacyEntry(&entries[i], fsNow)
	}
}

func forgetRacyEntry(e *Entry, fsNow int64) {
	if e.CTime >= fsNow {
		e.Dev, e.Inode, e.CTime = 0, 0, 0
	}
}

// fsTick waits until the filesystem clock in dir moves on and returns the
// new reading. Every file changed before the call then has a ctime below
// the result and can be trusted by the change cache; without the wait,
// files written just before a commit or by a restore would be racily
// clean and cost a re-read (and a dirty Usage) later. The wait is one
// timestamp tick: nothing with fine-grained timestamps, a jiffy on most
// filesystems; it gives up after a few seconds (racy entries then simply
// keep no cache data).
func fsTick(dir string) (int64, error) {
	start, err := fsClock(dir)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(3 * time.Second)
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		now, err := fsClock(dir)
		if err != nil || now > start || time.Now().After(deadline) {
			return now, err
		}
		time.Sleep(delay)
	}
}

// fsClock returns the filesystem's current timestamp as seen in dir: the
// ctime of a file created there now, with the filesystem's own granularity
// (which may be a jiffy or a whole second, unlike time.Now).
func fsClock(dir string) (int64, error) {
	f, err := os.CreateTemp(dir, ".dmclock-")
	if err != nil {
		return 0, fmt.Errorf("probe filesystem clock in %s: %w", dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("probe filesystem clock in %s: %w", dir, err)
	}
	return st.Ctim.Nano(), nil
}
