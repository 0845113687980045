package source

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lineServer answers every line it reads with "ok <line>", remembering
// when each arrived.
func lineServer(t *testing.T) (string, <-chan string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					got <- strings.TrimSpace(line)
					c.Write([]byte("ok " + line))
				}
			}()
		}
	}()
	return ln.Addr().String(), got
}

// TestHoldProxy: what comes before the pattern passes at once; the
// command holding it waits for take's ready and goes after it, at the
// instant take returns; what follows passes again, and Close removes the
// socket's directory.
func TestHoldProxy(t *testing.T) {
	addr, got := lineServer(t)
	p, err := newHoldProxy("GO\n", func() (net.Conn, error) { return net.Dial("tcp", addr) })
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) string {
		t.Helper()
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		reply, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(reply)
	}
	if reply := say("hello"); reply != "ok hello" || <-got != "hello" {
		t.Fatalf("before the pattern: %q", reply)
	}
	replied := make(chan string)
	go func() { replied <- say("GO") }()
	select {
	case l := <-got:
		t.Fatalf("the held command %q reached the server before the instant", l)
	case <-time.After(100 * time.Millisecond):
	}
	var readyAt time.Time
	at, err := p.take(context.Background(), nil, func() { readyAt = time.Now() }, "test")
	if err != nil {
		t.Fatal(err)
	}
	if l := <-got; l != "GO" || at.Before(readyAt) {
		t.Fatalf("held command %q sent at %s, ready at %s", l, at, readyAt)
	}
	if reply := <-replied; reply != "ok GO" {
		t.Fatalf("held command's reply: %q", reply)
	}
	if reply := say("GO"); reply != "ok GO" || <-got != "GO" {
		t.Fatalf("after the instant: %q", reply)
	}
	p.Close()
	if _, err := os.Stat(filepath.Dir(p.path)); !os.IsNotExist(err) {
		t.Fatalf("the socket's directory stays: %v", err)
	}
}

// TestHoldProxyToolEnds: a tool that ends before its command is held
// fails take instead of hanging, and ready is never called.
func TestHoldProxyToolEnds(t *testing.T) {
	addr, _ := lineServer(t)
	p, err := newHoldProxy("GO\n", func() (net.Conn, error) { return net.Dial("tcp", addr) })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	exited := make(chan struct{})
	close(exited)
	_, err = p.take(context.Background(), exited, func() { t.Error("ready called") }, "mysqldump")
	if err == nil || !strings.Contains(err.Error(), "mysqldump ended before it took its snapshot") {
		t.Fatalf("take after the tool ended: %v", err)
	}
}
