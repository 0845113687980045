package cli

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// badInput: what every parser here refuses with.
func badInput(err error) bool {
	return errors.Is(err, dotmesh.ErrInvalidArgument) || errors.Is(err, dotmesh.ErrInvalidName)
}

// FuzzParseRemoteAddress: an accepted USER@HOST[:PORT] gives a valid user
// and a host:port with a port from 1 to 65535, and parsing its own output
// again gives the same; a refused one is invalid input.
func FuzzParseRemoteAddress(f *testing.F) {
	for _, s := range []string{"admin@host", "admin@10.0.0.5:32607", "u@[::1]:1", "u@[fe80::1]", "u@h:0", "@h", "u@", "u@h:x", "u@a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		user, addr, err := ParseRemoteAddress(s)
		if err != nil {
			if !badInput(err) {
				t.Fatalf("%q: %v is not invalid input", s, err)
			}
			return
		}
		if err := dotmesh.ValidateName("user", user); err != nil {
			t.Fatalf("%q: accepted user %q: %v", s, user, err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			t.Fatalf("%q: address %q is not host:port: %v", s, addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("%q: port %q", s, port)
		}
		u2, a2, err := ParseRemoteAddress(user + "@" + addr)
		if err != nil || u2 != user || a2 != addr {
			t.Fatalf("%q -> %s@%s -> %s@%s, %v", s, user, addr, u2, a2, err)
		}
	})
}

// FuzzParseMetadata: lines of key=value either parse into exactly those
// pairs (and print back into lines that parse the same), or are refused
// as invalid input.
func FuzzParseMetadata(f *testing.F) {
	for _, s := range []string{"k=v", "a=1\nb=2", "k=1\nk=2", "=v", "novalue", "k=a=b", "-x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kvs := strings.Split(s, "\n")
		md, err := ParseMetadata(kvs)
		if err != nil {
			if !badInput(err) {
				t.Fatalf("%q: %v is not invalid input", s, err)
			}
			return
		}
		if len(md) != len(kvs) {
			t.Fatalf("%q: %d pairs from %d lines", s, len(md), len(kvs))
		}
		var again []string
		for _, k := range sortedKeys(md) {
			if err := dotmesh.ValidateName("metadata key", k); err != nil {
				t.Fatalf("%q: accepted key %q: %v", s, k, err)
			}
			again = append(again, k+"="+md[k])
		}
		md2, err := ParseMetadata(again)
		if err != nil || !reflect.DeepEqual(md, md2) {
			t.Fatalf("%q: round trip gave %v, %v", s, md2, err)
		}
	})
}

// FuzzParseSize: an accepted size is at least one byte and its decimal
// form parses to the same number; a refused one is invalid input.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "10G", "1.5T", " 8 G ", "0", "-1", "0.1", "1e3", "9999999T", "KB", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			if !badInput(err) {
				t.Fatalf("%q: %v is not invalid input", s, err)
			}
			return
		}
		if n < 1 {
			t.Fatalf("%q: accepted as %d bytes", s, n)
		}
		if m, err := parseSize(strconv.FormatInt(n, 10)); err != nil || m != n {
			t.Fatalf("%q = %d, but %d parses as %d, %v", s, n, n, m, err)
		}
	})
}

// FuzzLoadConfig: a config file either loads (no nil remotes, and saving
// and loading it again gives the same config) or is refused as invalid
// input naming the file.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(`{"current_remote":"local","remotes":{"local":{"user":"admin","address":"127.0.0.1:32607","api_key":"k","data_dir":"/d"}}}`))
	f.Add([]byte(`{"remotes":{"x":null}}`))
	f.Add([]byte(`{"remotes":[]}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "config")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			if !badInput(err) || !strings.Contains(err.Error(), path) {
				t.Fatalf("%q: %v is not invalid input naming the file", data, err)
			}
			return
		}
		for name, r := range cfg.Remotes {
			if r == nil {
				t.Fatalf("%q: remote %q is nil", data, name)
			}
		}
		path2 := filepath.Join(dir, "again")
		if err := SaveConfig(path2, cfg); err != nil {
			t.Fatal(err)
		}
		cfg2, err := LoadConfig(path2)
		if err != nil || !reflect.DeepEqual(cfg, cfg2) {
			t.Fatalf("%q: saved and loaded again: %+v, %v; want %+v", data, cfg2, err, cfg)
		}
	})
}

// FuzzAccessArgs: the hub commands' parsers either accept their input as
// it is (a visibility, label, audit id or user name that parses the same
// again) or refuse it as invalid input; an accepted user name is a valid
// namespace and an accepted label one printable line.
func FuzzAccessArgs(f *testing.F) {
	for _, s := range []string{"public", "private", "Public", "", "alice", "-x", "_x", "a b", "laptop", "two\nlines", " x", "00012-ab", "x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseVisibility(s); err == nil {
			if string(v) != s || (v != dotmesh.VisibilityPublic && v != dotmesh.VisibilityPrivate) {
				t.Fatalf("%q: visibility %q", s, v)
			}
		} else if !badInput(err) {
			t.Fatalf("%q: %v is not invalid input", s, err)
		}
		if l, err := ParseLabel(s); err == nil {
			if l != s || strings.ContainsAny(l, "\n\r\t") || len(l) > 128 {
				t.Fatalf("%q: label %q", s, l)
			}
		} else if !badInput(err) {
			t.Fatalf("%q: %v is not invalid input", s, err)
		}
		if id, err := ParseAuditID(s); err == nil {
			if id != s || strings.ContainsAny(id, "/?#&= \n") {
				t.Fatalf("%q: audit id %q", s, id)
			}
		} else if !badInput(err) {
			t.Fatalf("%q: %v is not invalid input", s, err)
		}
		if u, err := ParseNewUserName(s); err == nil {
			if err := (dotmesh.DotName{Namespace: u, Name: "x"}).ValidateNew(); err != nil || u != s {
				t.Fatalf("%q: user %q is no namespace: %v", s, u, err)
			}
		} else if !badInput(err) {
			t.Fatalf("%q: %v is not invalid input", s, err)
		}
	})
}
