package csi

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// grpcError maps dotmesh sentinels to the codes the CSI spec expects.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status
	}
	code := codes.Internal
	switch {
	case errors.Is(err, dotmesh.ErrInvalidName), errors.Is(err, dotmesh.ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, dotmesh.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, dotmesh.ErrAlreadyExists):
		code = codes.AlreadyExists
	case errors.Is(err, dotmesh.ErrConflict):
		code = codes.Aborted
	case errors.Is(err, dotmesh.ErrInUse), errors.Is(err, dotmesh.ErrDirty):
		code = codes.FailedPrecondition
	case errors.Is(err, dotmesh.ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, err.Error())
}

func invalid(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf(format, args...))
}
