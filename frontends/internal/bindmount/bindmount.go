// Package bindmount bind-mounts subdot directories onto the paths kubelet
// gives the CSI and FlexVolume drivers, and reads /proc/self/mountinfo to
// keep both idempotent. Linux only; needs CAP_SYS_ADMIN.
package bindmount

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Info is what mountinfo says about the topmost mount at a path.
type Info struct {
	Mounted  bool
	ReadOnly bool
}

// Stat reports whether path is a mount point, reading the mount table
// rather than comparing devices: a bind mount within one filesystem has
// the same device as its parent.
func Stat(path string) (Info, error) {
	path = filepath.Clean(path)
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Info{}, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	var info Info
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || unescape(fields[4]) != path {
			continue
		}
		info = Info{Mounted: true} // later lines are mounted on top
		for _, o := range strings.Split(fields[5], ",") {
			if o == "ro" {
				info.ReadOnly = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Info{}, fmt.Errorf("reading the mount table: %w", err)
	}
	return info, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, ok := octal(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	return byte(v), v < 256
}

// Bind mounts the directory src onto target (created if missing),
// read-only when ro.
func Bind(src, target string, ro bool) error {
	if err := os.MkdirAll(target, 0o750); err != nil {
		return fmt.Errorf("creating mount point %s: %w", target, err)
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mounting %s onto %s: %w", src, target, err)
	}
	if ro {
		// A bind mount ignores MS_RDONLY until remounted.
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, 0)
			return fmt.Errorf("making %s read-only: %w", target, err)
		}
	}
	return nil
}

// Unmount unmounts target until it is no mount point any more (a repeated
// publish may have stacked mounts); not being mounted is no error.
func Unmount(target string) error {
	for range 16 {
		info, err := Stat(target)
		if err != nil || !info.Mounted {
			return err
		}
		if err := unix.Unmount(target, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmounting %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmounting %s: still mounted after 16 unmounts", target)
}
