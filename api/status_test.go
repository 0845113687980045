package api

import (
	"errors"
	"net/http"
	"testing"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The statuses of ErrorFor, written as numbers, are the ones net/http
// names for each kind.
func TestErrorForStatuses(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{dotmesh.ErrUnauthorized, http.StatusUnauthorized},
		{dotmesh.ErrPermissionDenied, http.StatusForbidden},
		{dotmesh.ErrInvalidName, http.StatusBadRequest},
		{dotmesh.ErrInvalidArgument, http.StatusBadRequest},
		{dotmesh.ErrNotFound, http.StatusNotFound},
		{dotmesh.ErrAlreadyExists, http.StatusConflict},
		{dotmesh.ErrConflict, http.StatusConflict},
		{dotmesh.ErrAmbiguous, http.StatusConflict},
		{dotmesh.ErrDirty, http.StatusConflict},
		{dotmesh.ErrInUse, http.StatusConflict},
		{dotmesh.ErrNotSupported, http.StatusNotImplemented},
		{dotmesh.ErrCorrupt, http.StatusUnprocessableEntity},
		{dotmesh.ErrUnavailable, http.StatusServiceUnavailable},
		{dotmesh.ErrHookFailed, http.StatusFailedDependency},
		{errors.New("other"), http.StatusInternalServerError},
	} {
		if got, _ := ErrorFor(c.err); got != c.want {
			t.Errorf("ErrorFor(%v) status %d, want %d (%s)", c.err, got, c.want, http.StatusText(c.want))
		}
	}
	if len(codes) != 14 {
		t.Errorf("codes has %d kinds; this test checks 14", len(codes))
	}
}
