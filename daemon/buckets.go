package daemon

// A node pushes to and clones from s3:// bucket remotes (server/transfer.go
// opens them by URL), so the S3 kind of store is registered wherever a
// node runs.
import _ "github.com/dotmesh-io/dotmesh/bucket/s3"
