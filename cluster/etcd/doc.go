// Package etcdstore implements dotmesh.ClusterStore on etcd v3, for a
// cluster of nodes that share one registry. It passes the same conformance
// suite (cluster/storetest) as the single-node bbolt store.
//
// # Key layout
//
// Every key K is stored as Options.Prefix + K (default prefix "/dotmesh/"),
// so several dotmesh clusters, or tests, can share one etcd. The prefix is
// stripped again on the way out; List and Watch only ever see keys under
// it. Values are stored as they are. Revisions, leases and watches are
// etcd's own: a key's Revision is its ModRevision, writes return the
// revision of the etcd response header, a Condition with Revision 0 means
// CreateRevision == 0 (absent), and a lease is an etcd lease.
//
// # Errors
//
//   - dotmesh.ErrNotFound: a missing key; a lease etcd does not know
//     ("requested lease not found"), including in a Txn op.
//   - dotmesh.ErrConflict: a Txn whose conditions failed; the message names
//     the first failed condition's key (read back atomically in the
//     Txn's else branch).
//   - dotmesh.ErrInvalidArgument: an empty key, a Txn writing one key
//     twice, a request etcd refuses as too large or with too many ops
//     (etcd --max-request-bytes, --max-txn-ops).
//   - dotmesh.ErrUnavailable: etcd cannot be reached or cannot answer (no
//     endpoint reachable, no leader, no answer within Options.RequestTimeout,
//     out of space), or the Store is closed. The message names etcd and the
//     endpoints. The Store keeps no state of its own: once etcd is back the
//     same Store works again; the client reconnects by itself.
//   - dotmesh.ErrUnauthorized: etcd refused the client certificate or
//     credentials.
//
// A caller's own cancelled or expired context is returned as it is
// (context.Canceled, context.DeadlineExceeded), not as ErrUnavailable.
//
// # Watch
//
// Watch reads the current revision and starts an etcd watch from the next
// one, so every change made after Watch returned is delivered. The channel
// closes when ctx ends, when the Store is closed, and when etcd ends the
// watch (the revision it would resume from was compacted, the watch was
// cancelled, or it needs a leader and lost it). A channel that closes
// while ctx is still live therefore means "watch lost": Watch and List
// again. The etcd client buffers events for a slow consumer rather than
// dropping them.
//
// # TLS
//
// Give Options.CAFile (the CA that signed etcd's server certificate) to use
// https endpoints, and Options.CertFile plus Options.KeyFile to present a
// client certificate when etcd runs with --client-cert-auth. Certificates
// for a test setup can be made with openssl:
//
//	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=etcd-ca -keyout ca.key -out ca.crt
//	openssl req -newkey rsa:2048 -nodes -subj /CN=etcd -keyout server.key -out server.csr
//	openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -out server.crt -extfile <(printf subjectAltName=IP:127.0.0.1,DNS:localhost)
//	openssl req -newkey rsa:2048 -nodes -subj /CN=dotmesh -keyout client.key -out client.csr
//	openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -out client.crt
//
// and etcd started with
//
//	etcd --listen-client-urls https://127.0.0.1:2379 --advertise-client-urls https://127.0.0.1:2379 \
//	     --cert-file server.crt --key-file server.key --trusted-ca-file ca.crt --client-cert-auth
//
// then Options{Endpoints: []string{"https://127.0.0.1:2379"}, CAFile: "ca.crt",
// CertFile: "client.crt", KeyFile: "client.key"}.
package etcdstore
