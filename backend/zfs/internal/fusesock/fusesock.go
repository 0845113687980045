// Package fusesock takes ZFS snapshots through zfs-fuse's command socket,
// as zfs-fuse's own libzfs does, instead of running the zfs command.
//
// zfs-fuse serves the ZFS ioctls on a unix socket (DefaultPath). A client
// sends an ioctl request naming the command and the address of its
// zfs_cmd_t; the daemon then asks for the memory it needs (copyin), hands
// back what it changed (copyout) and ends with the ioctl's errno. Here the
// addresses are tokens for buffers this package holds, so nothing but
// those buffers is ever read or written.
//
// Hand-written because no Go library speaks this protocol, and because
// it pays: on the 2-core VM this project is measured on, `zfs snapshot`
// took 22.4 ms (median of 20), of which a `zfs get` of one property, the
// cost of starting the command (its shared libraries, libzfs's set-up),
// took 12.9 ms; the same snapshot with a user property through the
// socket took 6.2-8.5 ms.
//
// The layout is zfs-fuse 0.7's (pool version 23): a zfs_cmd_t of
// cmdSize bytes (MAXPATHLEN 4096) and its ioctl numbers. The daemon
// says the size it copies in; any other size ends the call before the
// daemon has a byte of it (ErrLayout), so a daemon of another layout
// changes nothing and the caller can run the command instead. The pool
// history does not get the zfs command line the command logs.
package fusesock

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DefaultPath is where zfs-fuse listens.
const DefaultPath = "/var/run/zfs/zfs_socket"

var (
	// ErrLayout is a daemon whose zfs_cmd_t is not the one this package
	// knows: the call was ended before the daemon read it.
	ErrLayout = errors.New("fusesock: zfs-fuse's command layout differs from the one this client knows")
	// ErrProtocol is an answer that does not follow the protocol.
	ErrProtocol = errors.New("fusesock: zfs-fuse's answer does not follow its protocol")
)

// Message types (zfsfuse_cmd_t.cmd_type).
const (
	ioctlReq = iota
	ioctlAns
	copyinReq
	copyinstrReq
	copyinstrAns
	copyoutReq
	mountReq
	getfReq
)

const (
	msgSize = 32    // zfsfuse_cmd_t
	cmdSize = 17728 // zfs_cmd_t with MAXPATHLEN 4096

	// Offsets in zfs_cmd_t.
	offName       = 0     // zc_name[4096]: the file system
	offValue      = 4096  // zc_value[8192]: the snapshot's name
	offNvlistSrc  = 16664 // zc_nvlist_src: address of the packed properties
	offNvlistSize = 16672 // zc_nvlist_src_size
	nameMax       = 256   // ZFS's MAXNAMELEN, which every dataset name keeps below

	iocSnapshot = 'Z'<<8 + 36 // ZFS_IOC_SNAPSHOT

	// The tokens the daemon gets as addresses.
	cmdAddr   = 0x1000_0000
	nvlistAdr = 0x2000_0000
)

// Client makes ioctls on the daemon at a socket path, one connection per
// call (a unix connect costs tens of microseconds; a kept connection
// would outlive a daemon's restart).
type Client struct {
	path string
}

// New returns a client of the daemon listening at path.
func New(path string) *Client { return &Client{path: path} }

// Path is the socket's path.
func (c *Client) Path() string { return c.path }

// DialError is a socket that could not be dialed: no daemon listens, so
// nothing was asked of one.
type DialError struct{ Err error }

func (e *DialError) Error() string { return "fusesock: " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// Snapshot takes the snapshot fs@name with the user properties props
// (names with a colon) set, as `zfs snapshot -o k=v fs@name` does. A
// failed ioctl returns its syscall.Errno (ENOENT: no such file system,
// EEXIST: the snapshot exists, EBUSY, ...). ctx ending cuts the call
// short; the snapshot may have been made then, as when the command is
// killed.
func (c *Client) Snapshot(ctx context.Context, fs, name string, props map[string]string) error {
	if fs == "" || name == "" || len(fs) >= nameMax || len(name) >= nameMax || strings.ContainsRune(fs+name, 0) {
		return fmt.Errorf("fusesock: invalid snapshot name %q@%q", fs, name)
	}
	for k := range props {
		if !strings.Contains(k, ":") {
			return fmt.Errorf("fusesock: %q is not a user property; a snapshot takes only those", k)
		}
	}
	cmd := make([]byte, cmdSize)
	copy(cmd[offName:], fs)
	copy(cmd[offValue:], name)
	var nvl []byte
	if len(props) > 0 {
		nvl = PackStrings(props)
		binary.LittleEndian.PutUint64(cmd[offNvlistSrc:], nvlistAdr)
		binary.LittleEndian.PutUint64(cmd[offNvlistSize:], uint64(len(nvl)))
	}
	return c.ioctl(ctx, iocSnapshot, memory{cmdAddr: cmd, nvlistAdr: nvl})
}

// ioctl makes one ioctl with the zfs_cmd_t at cmdAddr in mem.
func (c *Client) ioctl(ctx context.Context, req uint32, mem memory) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return &DialError{err}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = exchange(conn, req, mem)
	if ctx.Err() != nil && err != nil {
		return fmt.Errorf("fusesock: %w (the snapshot may have been made)", ctx.Err())
	}
	return err
}

// memory maps the addresses given to the daemon to the buffers behind
// them.
type memory map[uint64][]byte

// span is the part of a buffer the daemon asks for, or nil.
func (m memory) span(ptr, size uint64) []byte {
	for base, b := range m {
		if ptr >= base && ptr-base <= uint64(len(b)) && size <= uint64(len(b))-(ptr-base) {
			return b[ptr-base : ptr-base+size]
		}
	}
	return nil
}

// exchange sends the ioctl request and serves the daemon's copies until
// its answer: the errno, nil for 0. rw is the connection.
func exchange(rw io.ReadWriter, req uint32, mem memory) error {
	m := make([]byte, msgSize)
	binary.LittleEndian.PutUint32(m[0:], ioctlReq)
	binary.LittleEndian.PutUint32(m[8:], req)
	binary.LittleEndian.PutUint64(m[16:], cmdAddr)
	if _, err := rw.Write(m); err != nil {
		return fmt.Errorf("fusesock: sending the request: %w", err)
	}
	for {
		if _, err := io.ReadFull(rw, m); err != nil {
			return fmt.Errorf("%w: reading the daemon's next message: %v", ErrProtocol, err)
		}
		typ := binary.LittleEndian.Uint32(m[0:])
		ptr, size := binary.LittleEndian.Uint64(m[8:]), binary.LittleEndian.Uint64(m[16:])
		switch typ {
		case ioctlAns:
			if ret := int32(binary.LittleEndian.Uint32(m[8:])); ret != 0 {
				if ret < 0 {
					return fmt.Errorf("%w: errno %d", ErrProtocol, ret)
				}
				return syscall.Errno(ret)
			}
			return nil
		case copyinReq:
			if ptr == cmdAddr && size != cmdSize {
				return fmt.Errorf("%w: it copies in %d bytes of the command, not %d", ErrLayout, size, cmdSize)
			}
			b := mem.span(ptr, size)
			if b == nil {
				return fmt.Errorf("%w: copy-in of %d bytes at %#x, outside what was given", ErrProtocol, size, ptr)
			}
			if _, err := rw.Write(b); err != nil {
				return fmt.Errorf("fusesock: copying in: %w", err)
			}
		case copyoutReq:
			b := mem.span(ptr, size)
			if b == nil {
				return fmt.Errorf("%w: copy-out of %d bytes at %#x, outside what was given", ErrProtocol, size, ptr)
			}
			if _, err := io.ReadFull(rw, b); err != nil {
				return fmt.Errorf("%w: reading a copy-out: %v", ErrProtocol, err)
			}
		default:
			// Strings (the history line) and descriptors are never
			// given, so never asked for.
			return fmt.Errorf("%w: message type %d", ErrProtocol, typ)
		}
	}
}

// PackStrings packs string pairs as an nvlist in the XDR encoding, which
// nvlist_unpack reads whatever the host: the header, version 0 with
// unique names, each pair (its encoded and unpacked sizes, name, type
// DATA_TYPE_STRING, one element, value) and two zero words. Pairs go in
// name order.
func PackStrings(kv map[string]string) []byte {
	b := []byte{1, 1, 0, 0} // NV_ENCODE_XDR; the byte order is XDR's whatever this says
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 1) // NV_UNIQUE_NAME
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		v := kv[k]
		var p []byte
		p = xdrString(p, k)
		p = binary.BigEndian.AppendUint32(p, 9) // DATA_TYPE_STRING
		p = binary.BigEndian.AppendUint32(p, 1)
		p = xdrString(p, v)
		// The unpacked nvpair_t: 16 bytes, the name and the value with
		// their NULs, each 8-aligned.
		unpacked := align8(16+len(k)+1) + align8(len(v)+1)
		b = binary.BigEndian.AppendUint32(b, uint32(8+len(p)))
		b = binary.BigEndian.AppendUint32(b, uint32(unpacked))
		b = append(b, p...)
	}
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0)
}

func xdrString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	b = append(b, s...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func align8(n int) int { return (n + 7) &^ 7 }
