package zfs

// SocketStreams counts the streams sent and received through zfs-fuse's
// command socket, for the package's external tests.
func SocketStreams() uint64 { return socketStreams.Load() }
