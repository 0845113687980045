package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// HashKey is how API keys are stored: dotmesh.HashKey, the one hash.
func HashKey(key string) []byte { return dotmesh.HashKey(key) }

type authenticator struct {
	node  *dotmesh.Node
	dummy []byte // compared against when the user has no key
}

func newAuthenticator(node *dotmesh.Node) *authenticator {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return &authenticator{node: node, dummy: HashKey(string(b))}
}

// authenticate returns the user a request's key belongs to. Basic auth
// names the user; a bearer token is the admin's key. A missing user, an
// invalid user name and a wrong key all take the same path: one hash and
// one constant-time comparison, so timing does not tell users apart.
func (a *authenticator) authenticate(r *http.Request) (string, error) {
	user, key, ok := r.BasicAuth()
	if !ok {
		h := r.Header.Get("Authorization")
		scheme, token, found := strings.Cut(h, " ")
		if h == "" || !found || !strings.EqualFold(scheme, "Bearer") {
			return "", fmt.Errorf("%w: send an API key as HTTP basic auth (user %s) or as \"Authorization: Bearer KEY\"", dotmesh.ErrUnauthorized, api.AdminUser)
		}
		user, key = api.AdminUser, strings.TrimSpace(token)
	}
	want := a.dummy
	known := false
	stored, err := a.node.APIKeys().Get(r.Context(), user)
	switch {
	case err == nil && len(stored.Hash) == sha256.Size:
		want, known = stored.Hash, true
	case err == nil, errors.Is(err, dotmesh.ErrNotFound), errors.Is(err, dotmesh.ErrInvalidName):
	default:
		// The registry cannot be read: say so rather than blame the key.
		return "", fmt.Errorf("checking the API key: %w", err)
	}
	match := subtle.ConstantTimeCompare(HashKey(key), want) == 1
	if !match || !known || key == "" {
		return "", fmt.Errorf("%w: wrong API key or unknown user", dotmesh.ErrUnauthorized)
	}
	return user, nil
}
