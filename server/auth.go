package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// HashKey is how API keys are stored: dotmesh.HashKey, the one hash.
func HashKey(key string) []byte { return dotmesh.HashKey(key) }

type authenticator struct {
	node      *dotmesh.Node
	anonymous bool // Options.AnonymousRead
}

// authenticate returns who a request comes from. Basic auth names the
// user; a bearer token is a key alone, of any user. Checking the key is
// APIKeys.Authenticate's: hashed, constant time, every failure alike. A
// request without credentials is the anonymous caller when the server
// lets it in, else refused.
func (a *authenticator) authenticate(r *http.Request) (dotmesh.Principal, error) {
	user, key, ok := r.BasicAuth()
	if !ok {
		h := r.Header.Get("Authorization")
		if h == "" && a.anonymous {
			return dotmesh.Principal{}, nil
		}
		scheme, token, found := strings.Cut(h, " ")
		if h == "" || !found || !strings.EqualFold(scheme, "Bearer") {
			return dotmesh.Principal{}, fmt.Errorf("%w: send an API key as HTTP basic auth (user:key) or as \"Authorization: Bearer KEY\"", dotmesh.ErrUnauthorized)
		}
		user, key = "", strings.TrimSpace(token)
	}
	if key == "" {
		return dotmesh.Principal{}, fmt.Errorf("%w: wrong API key or unknown user", dotmesh.ErrUnauthorized)
	}
	p, err := a.node.APIKeys().Authenticate(r.Context(), user, key)
	switch {
	case errors.Is(err, dotmesh.ErrUnauthorized):
		return dotmesh.Principal{}, err
	case err != nil:
		// The registry cannot be read: say so rather than blame the key.
		return dotmesh.Principal{}, fmt.Errorf("checking the API key: %w", err)
	}
	return p, nil
}
