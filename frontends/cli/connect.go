package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
	"github.com/dotmesh-io/dotmesh/internal/node"
)

// session is one invocation's connection to a remote, with the config it
// came from (so that commands can update the current dot).
type session struct {
	a          *app
	cfgPath    string
	cfg        *Config
	remoteName string
	remote     *Remote
	c          *client.Client
}

// connect loads the config and makes a client for the chosen remote. No
// request is sent yet.
func (a *app) connect() (*session, error) {
	if err := a.timeouts.validate(); err != nil {
		return nil, err
	}
	path, cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	name, r, err := a.remote(cfg)
	if err != nil {
		return nil, err
	}
	if r.Bucket != nil {
		return nil, notABucket(name)
	}
	if needsTLS(r.URL(), r.CACert) {
		return nil, a.tlsClient()
	}
	c, err := newClient(r, !a.noSocket, a.timeouts.options()...)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", name, err)
	}
	return &session{a: a, cfgPath: path, cfg: cfg, remoteName: name, remote: r, c: c}, nil
}

// newClient is a client for remote r. dm is short-lived: its calls go
// from the calling goroutine on one kept connection (client.WithDirect).
// With socket, a remote that records its node's data directory (the one
// `dm cluster init` writes) is reached through the node's local API
// socket there when its address is loopback (client.WithLocalSocket).
func newClient(r *Remote, socket bool, opts ...client.Option) (*client.Client, error) {
	opts = append(opts, client.WithDirect())
	if socket && r.DataDir != "" {
		opts = append(opts, client.WithLocalSocket(filepath.Join(r.DataDir, node.APISocketFile)))
	}
	if r.CACert != "" {
		opts = append(opts, client.WithCACert([]byte(r.CACert)))
	}
	return client.New(r.URL(), r.User, r.APIKey, opts...)
}

// needsTLS reports whether the node at url (with the pinned CA ca) needs
// TLS, which this dm's client lacks (the light dm: client.HasTLS false).
func needsTLS(url, ca string) bool {
	return !client.HasTLS && (strings.HasPrefix(url, "https:") || ca != "")
}

// tlsClient hands the whole invocation to the dm that has TLS (dm-node),
// as the bucket commands are: the user sees its output and exit status.
func (a *app) tlsClient() error { return a.handOver("the TLS client (an https remote)") }

// wrap turns a client error into the one-line message dm prints: server
// errors as the server said them (with a hint where one helps), transport
// errors naming the remote that could not be reached.
func (s *session) wrap(err error) error {
	return wrapRemoteErr(err, s.remoteName, s.remote.Address)
}

func wrapRemoteErr(err error, name, addr string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return errInterrupted
	}
	var re *api.RemoteError
	if errors.As(err, &re) {
		if errors.Is(err, dotmesh.ErrUnauthorized) && !re.Peer {
			return refusedKey(err, name, addr)
		}
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return kinded(dotmesh.ErrUnavailable, fmt.Errorf("remote %s at %s did not answer in time", name, addr))
	}
	if errors.Is(err, dotmesh.ErrUnavailable) {
		return fmt.Errorf("remote %s: %w", name, err)
	}
	return err
}

// refusedKey says which remote refused its key and how to replace it.
func refusedKey(err error, name, addr string) error {
	return kinded(dotmesh.ErrUnauthorized, fmt.Errorf("remote %s at %s refused the API key (%s); add it again with the right key: `dm remote rm %s`, then `dm remote add %s USER@%s`", name, addr, err.Error(), name, name, addr))
}

// currentDot returns the dot a command acts on: the explicit name when
// given (in the remote user's namespace unless it names one), else the
// remote's current dot.
func (s *session) currentDot(explicit string) (dotmesh.DotName, error) {
	if explicit != "" {
		return s.dotArg(explicit)
	}
	if s.remote.CurrentDot == "" {
		return dotmesh.DotName{}, kinded(dotmesh.ErrInvalidArgument, fmt.Errorf("no current dot on remote %s: pass --dot DOT, or choose one with `dm switch DOT`", s.remoteName))
	}
	d, err := dotmesh.ParseDotName(s.remote.CurrentDot)
	if err != nil {
		return dotmesh.DotName{}, fmt.Errorf("the current dot %q in %s is invalid: %w", s.remote.CurrentDot, s.cfgPath, err)
	}
	return d, nil
}

// connectDot checks a --dot value before connecting (bad input fails
// without a remote), connects, and resolves the dot: the value, else the
// remote's current dot.
func (a *app) connectDot(dot string) (*session, dotmesh.DotName, error) {
	if dot != "" {
		if _, err := parseDotName(dot); err != nil {
			return nil, dotmesh.DotName{}, err
		}
	}
	s, err := a.connect()
	if err != nil {
		return nil, dotmesh.DotName{}, err
	}
	name, err := s.currentDot(dot)
	if err != nil {
		return nil, dotmesh.DotName{}, err
	}
	return s, name, nil
}

// setCurrentDot records d as the current dot of the session's remote.
func (s *session) setCurrentDot(d string) error {
	// Reload so that a concurrent change to another part of the config is
	// not undone.
	cfg, err := LoadConfig(s.cfgPath)
	if err != nil {
		return err
	}
	r, ok := cfg.Remotes[s.remoteName]
	if !ok {
		return fmt.Errorf("remote %s vanished from %s", s.remoteName, s.cfgPath)
	}
	r.CurrentDot = d
	s.remote.CurrentDot = d
	return SaveConfig(s.cfgPath, cfg)
}
