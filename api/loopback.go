package api

import (
	"net"
	"strings"
)

// LoopbackAddr reports whether the HOST:PORT (or bare host) addr stays on
// this machine: a loopback IP or "localhost". Plain HTTP beyond it needs
// an explicit --insecure, as API keys would cross the network in clear.
func LoopbackAddr(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
