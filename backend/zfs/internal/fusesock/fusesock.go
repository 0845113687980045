// Package fusesock takes ZFS snapshots, sends and receives increments
// through zfs-fuse's command socket, as zfs-fuse's own libzfs does,
// instead of running the zfs command.
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
// Sends and receives of increments go the same way: the daemon asks
// for the stream's descriptor, which goes over the socket (SCM_RIGHTS),
// and reads or writes the stream itself, as with the command; a receive
// reads the stream's first record itself first, as libzfs does. That
// saves the command's start on both nodes of a push.
//
// The layout is zfs-fuse 0.7's (pool version 23): a zfs_cmd_t of
// cmdSize bytes (MAXPATHLEN 4096) and its ioctl numbers. The daemon
// says the size it copies in; any other size ends the call before the
// daemon has a byte of it (ErrLayout), so a daemon of another layout
// changes nothing and the caller can run the command instead (Check
// asks without an ioctl). The pool history does not get the zfs command
// line the command logs.
package fusesock

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
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
	offName          = 0     // zc_name[4096]
	offValue         = 4096  // zc_value[8192]
	offTopDS         = 12544 // zc_top_ds[4096]
	offGUID          = 16640 // zc_guid: a receive's force flag
	offNvlistSrc     = 16664 // zc_nvlist_src: address of the packed properties
	offNvlistSize    = 16672 // zc_nvlist_src_size
	offNvlistDst     = 16680 // zc_nvlist_dst: where a receive's property errors go
	offNvlistDstSize = 16688 // zc_nvlist_dst_size
	offCookie        = 16696 // zc_cookie: the descriptor a stream goes through
	offBeginRecord   = 17080 // zc_begin_record: a received stream's first record
	nameMax          = 256   // ZFS's MAXNAMELEN, which every dataset name keeps below

	iocObjsetStats = 'Z'<<8 + 18 // ZFS_IOC_OBJSET_STATS
	iocRecv        = 'Z'<<8 + 27 // ZFS_IOC_RECV
	iocSend        = 'Z'<<8 + 28 // ZFS_IOC_SEND
	iocSnapshot    = 'Z'<<8 + 36 // ZFS_IOC_SNAPSHOT

	// The tokens the daemon gets as addresses, and as a descriptor.
	cmdAddr   = 0x1000_0000
	nvlistAdr = 0x2000_0000
	dstAddr   = 0x3000_0000
	fdToken   = 1000
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
	if !validSnapshot(fs + "@" + name) {
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
	return c.ioctl(ctx, iocSnapshot, memory{cmdAddr: cmd, nvlistAdr: nvl}, nil)
}

// Send writes the stream of the snapshot to ("fs@name") into f, a pipe or
// socket, incremental from the snapshot from of the same file system
// when from (a short name) is not empty: `zfs send [-i from] to` with f
// as its output. The daemon writes into f itself.
func (c *Client) Send(ctx context.Context, to, from string, f *os.File) error {
	if !validSnapshot(to) || strings.ContainsAny(from, "@/\x00") || len(from) >= nameMax {
		return fmt.Errorf("fusesock: invalid send of %q from %q", to, from)
	}
	cmd := make([]byte, cmdSize)
	copy(cmd[offName:], to)
	copy(cmd[offValue:], from)
	binary.LittleEndian.PutUint64(cmd[offCookie:], fdToken)
	return c.ioctl(ctx, iocSend, memory{cmdAddr: cmd}, f)
}

// RecordSize is a stream record's size (dmu_replay_record_t); a stream
// begins with a BEGIN record.
const RecordSize = 312

const (
	backupMagic = 0x2F5bacbac // DMU_BACKUP_MAGIC
	flagClone   = 1           // DRR_FLAG_CLONE
)

// ErrStream is a stream that does not begin with the BEGIN record of an
// increment.
var ErrStream = errors.New("fusesock: invalid stream")

// Receive receives an incremental stream from f, a socket or pipe, as
// snapshot dest ("fs@name") of the file system fs, which holds the
// stream's base as its latest snapshot: `zfs receive [-F] dest` with f as
// its input. force rolls fs back to that snapshot first. It dials first
// (a DialError has read nothing from f), then reads the stream's BEGIN
// record and hands the daemon f for the rest. Only increments that are
// no clones are taken this way (ErrStream otherwise, the record read).
func (c *Client) Receive(ctx context.Context, dest string, force bool, f *os.File) error {
	if !validSnapshot(dest) {
		return fmt.Errorf("fusesock: invalid receive target %q", dest)
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rec := make([]byte, RecordSize)
	if _, err := io.ReadFull(f, rec); err != nil {
		return fmt.Errorf("%w: failed to read from stream: %v", ErrStream, err)
	}
	if binary.LittleEndian.Uint32(rec) != 0 || binary.LittleEndian.Uint64(rec[8:]) != backupMagic {
		return fmt.Errorf("%w (bad magic number)", ErrStream)
	}
	if binary.LittleEndian.Uint64(rec[8+40:]) == 0 || binary.LittleEndian.Uint32(rec[8+28:])&flagClone != 0 {
		return fmt.Errorf("%w: not an increment", ErrStream)
	}
	fs, _, _ := strings.Cut(dest, "@")
	cmd := make([]byte, cmdSize)
	copy(cmd[offName:], fs) // what the daemon checks permissions on, as libzfs sets it
	copy(cmd[offValue:], dest)
	copy(cmd[offTopDS:], dest)
	copy(cmd[offBeginRecord:], rec[8:])
	binary.LittleEndian.PutUint64(cmd[offCookie:], fdToken)
	if force {
		binary.LittleEndian.PutUint64(cmd[offGUID:], 1)
	}
	errs := make([]byte, 1024) // the property errors, which none are: nothing is set
	binary.LittleEndian.PutUint64(cmd[offNvlistDst:], dstAddr)
	binary.LittleEndian.PutUint64(cmd[offNvlistDstSize:], uint64(len(errs)))
	return c.on(ctx, conn, iocRecv, memory{cmdAddr: cmd, dstAddr: errs}, f)
}

// validSnapshot says whether s is "fs@name", neither part empty nor
// holding another '@' or a NUL, and short enough for the command's name
// fields.
func validSnapshot(s string) bool {
	fs, name, ok := strings.Cut(s, "@")
	return ok && fs != "" && name != "" && len(s) < nameMax && !strings.ContainsAny(s, "\x00") && !strings.Contains(name, "@")
}

// ioctl makes one ioctl with the zfs_cmd_t at cmdAddr in mem; f, when
// not nil, is the descriptor the daemon asks for.
func (c *Client) ioctl(ctx context.Context, req uint32, mem memory, f *os.File) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return c.on(ctx, conn, req, mem, f)
}

func (c *Client) dial(ctx context.Context) (*net.UnixConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, &DialError{err}
	}
	return conn.(*net.UnixConn), nil
}

// bind makes conn end with ctx: at its deadline, and at once when it is
// cancelled, until stop is called.
func bind(ctx context.Context, conn net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}

// on makes the ioctl on conn.
func (c *Client) on(ctx context.Context, conn *net.UnixConn, req uint32, mem memory, f *os.File) error {
	defer bind(ctx, conn)()
	var sendFD func() error
	if f != nil {
		sendFD = func() error {
			_, _, err := conn.WriteMsgUnix([]byte{0}, syscall.UnixRights(int(f.Fd())), nil)
			return err
		}
	}
	err := exchange(conn, req, mem, sendFD)
	if ctx.Err() != nil && err != nil {
		return fmt.Errorf("fusesock: %w (the ioctl may have taken effect)", ctx.Err())
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
// its answer: the errno, nil for 0. rw is the connection; sendFD, when
// not nil, passes the descriptor the daemon asks for as fdToken.
func exchange(rw io.ReadWriter, req uint32, mem memory, sendFD func() error) error {
	m := request(req)
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
		case getfReq:
			if sendFD == nil || int32(binary.LittleEndian.Uint32(m[8:])) != fdToken {
				return fmt.Errorf("%w: asked for descriptor %d, which was not given", ErrProtocol, int32(binary.LittleEndian.Uint32(m[8:])))
			}
			if err := sendFD(); err != nil {
				return fmt.Errorf("fusesock: passing the stream's descriptor: %w", err)
			}
		default:
			// Strings (the history line) are never given, so never
			// asked for.
			return fmt.Errorf("%w: message type %d", ErrProtocol, typ)
		}
	}
}

// request is the message asking for ioctl req on the command at cmdAddr.
func request(req uint32) []byte {
	m := make([]byte, msgSize)
	binary.LittleEndian.PutUint32(m[0:], ioctlReq)
	binary.LittleEndian.PutUint32(m[8:], req)
	binary.LittleEndian.PutUint64(m[16:], cmdAddr)
	return m
}

// Check learns whether the daemon's command layout is the one this
// package knows (ErrLayout if not) without making an ioctl: it asks for
// one that only reads (ZFS_IOC_OBJSET_STATS) and ends the call when the
// daemon asks for the command, which then fails without looking at it.
// A caller checks before a Receive, which reads from its stream before
// the daemon can tell.
func (c *Client) Check(ctx context.Context) error {
	conn, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer bind(ctx, conn)()
	return check(conn)
}

func check(rw io.ReadWriter) error {
	if _, err := rw.Write(request(iocObjsetStats)); err != nil {
		return fmt.Errorf("fusesock: sending the request: %w", err)
	}
	m := make([]byte, msgSize)
	if _, err := io.ReadFull(rw, m); err != nil {
		return fmt.Errorf("%w: reading the daemon's first message: %v", ErrProtocol, err)
	}
	if binary.LittleEndian.Uint32(m) != copyinReq || binary.LittleEndian.Uint64(m[8:]) != cmdAddr {
		return fmt.Errorf("%w: the daemon did not ask for the command first", ErrProtocol)
	}
	if size := binary.LittleEndian.Uint64(m[16:]); size != cmdSize {
		return fmt.Errorf("%w: it copies in %d bytes of the command, not %d", ErrLayout, size, cmdSize)
	}
	return nil
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
