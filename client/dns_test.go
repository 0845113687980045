package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dotmesh-io/dotmesh/client"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// TestUnknownHostMessage: a host name that does not resolve gives one
// sentence naming the host and what to check, as ErrUnavailable, not Go's
// "dial tcp: lookup ... on ...:53: no such host".
func TestUnknownHostMessage(t *testing.T) {
	c, err := client.New("http://no-such-host.invalid:32607", "admin", "key")
	noErr(t, err)
	_, err = c.Ping(context.Background())
	if !errors.Is(err, dotmesh.ErrUnavailable) {
		t.Fatalf("%v is not ErrUnavailable", err)
	}
	for _, want := range []string{"host name no-such-host.invalid", "check the address"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "dial tcp") {
		t.Errorf("%q carries Go's raw dial error", err)
	}
}
