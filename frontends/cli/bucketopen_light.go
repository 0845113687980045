//go:build dmlight

package cli

import (
	"context"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// The light dm is built without the bucket client (see bucketopen.go):
// each command that would open a bucket remote's repository hands the
// whole invocation to dm-node before it asks, prints or changes
// anything.

func (a *app) bucketClient() error { return a.handOver("the bucket client") }

func (a *app) listBucket(context.Context, string, *BucketRemote) error { return a.bucketClient() }

func (a *app) logBucket(context.Context, string, *BucketRemote, dotmesh.DotName, string, int) error {
	return a.bucketClient()
}

func (a *app) gcBucket(context.Context, string, *BucketRemote, int, bool) error {
	return a.bucketClient()
}

func (a *app) verifyBucket(context.Context, string, *BucketRemote, string) error {
	return a.bucketClient()
}

func (a *app) addBucketKey(context.Context, string, *BucketRemote, []byte) error {
	return a.bucketClient()
}

func (a *app) listBucketKeys(context.Context, string) error { return a.bucketClient() }

func (a *app) removeBucketKey(context.Context, string, string, bool) error {
	return a.bucketClient()
}

func (a *app) unlockBucket(context.Context, string) error { return a.bucketClient() }

func (a *app) openBucketRepo(context.Context, string, *BucketRemote) (string, error) {
	return "", a.bucketClient()
}

// isKeyInUse: only the bucket client removes keys.
func isKeyInUse(error) bool { return false }
