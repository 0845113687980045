// Package baresock holds what both ends of a direct transfer do to a TCP
// socket whose descriptor a command (zfs send, zfs receive) holds: the
// runtime's poller no longer sees its reads and writes, so ending it and
// counting its bytes go to the kernel.
package baresock

import (
	"net"

	"golang.org/x/sys/unix"
)

// Shutdown ends both directions of c's socket. Unlike Close, it reaches
// every holder of the socket (a command, zfs-fuse, which the command
// passed the descriptor to) and wakes a read blocked in the kernel: the
// reader sees the end of the stream.
func Shutdown(c *net.TCPConn) {
	control(c, func(fd int) { _ = unix.Shutdown(fd, unix.SHUT_RDWR) })
}

// SetNonblock puts c's socket back in the non-blocking mode the runtime's
// poller expects, after f.Fd() of a File of it cleared it.
func SetNonblock(c *net.TCPConn) {
	control(c, func(fd int) { _ = unix.SetNonblock(fd, true) })
}

// Acked is how many bytes the peer acknowledged on c, Received how many
// arrived from it (TCP_INFO); 0 when the kernel does not say.
func Acked(c *net.TCPConn) int64 {
	info := tcpInfo(c)
	if info == nil {
		return 0
	}
	return int64(info.Bytes_acked)
}

// Received: see Acked.
func Received(c *net.TCPConn) int64 {
	info := tcpInfo(c)
	if info == nil {
		return 0
	}
	return int64(info.Bytes_received)
}

func tcpInfo(c *net.TCPConn) (info *unix.TCPInfo) {
	control(c, func(fd int) { info, _ = unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO) })
	return info
}

func control(c *net.TCPConn, f func(fd int)) {
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { f(int(fd)) })
	}
}
