//go:build !linux

package client

import "net"

// unsent cannot know the send queue here: the idle watch then sees only
// what user space moves.
func unsent(net.Conn) int { return -1 }
