// Package h1 writes HTTP/1.1 requests and reads their answers over one
// connection, for the light dm (build tag dmlight), which must not link
// net/http.
//
// Why hand-written: the project prefers well-kept libraries for
// protocols, but net/http's package inits (with crypto/tls, crypto/x509
// and hpack, which any http.Client links) cost a dm process 0.8-1.0 ms of
// wall time in a ~7 ms commit (README, "Session 22": a static program
// making one request with net.Dial and a hand-written exchange took
// 2.70-2.79 ms, with Request.Write/ReadResponse 3.33-3.49 ms, with the
// Transport linked 3.60-3.74 ms). That is the one lever left for the
// commit rows of issue 22, so this package exists. The full build's
// client uses it too for plain-HTTP calls with client.WithDirect (the
// dm command line, one kept connection, in place of net/http's
// Request.Write and ReadResponse it used before); nodes, https and every
// other client keep net/http. With this package, the same one-request program
// (static, GET /v1/ping with Basic auth against a files node, copies with
// their page cache dropped, interleaved, 300 runs each, load 3.8-4.6)
// took 2.40-2.42 ms of wall against 2.86-2.94 with Request.Write and
// ReadResponse, 3.35-3.40 with an http.Client, 1.60-1.65 for an empty
// program.
//
// The light dm's client.Client sends every call through it
// (client/direct.go's h1Transport; the full build through net/http,
// wire_nethttp.go, but for WithDirect's plain-HTTP calls). What the
// light dm asks of a node:
//   - plain http:// over TCP to a node or a cluster member; never a unix
//     socket (the Docker plugin socket is served, not called, by dm) and
//     never through a proxy (the client sets Proxy to nil: a proxy would
//     see the API key);
//   - methods GET, POST, PUT, DELETE with Basic auth, Accept, an optional
//     request id and transfer headers; JSON request bodies held in memory
//     (Content-Length) and, for the transfer calls, streamed bodies
//     (chunked);
//   - answers with Content-Length or chunked bodies, streamed NDJSON
//     progress (chunked, read as it comes), and "102 Processing" interim
//     answers a node sends while it works (they re-arm the idle watch).
//
// What goes to dm-node instead (as the bucket commands do through
// Wiring.HandOver): https remotes and nodes (TLS, a CA file), and
// anything else that needs net/http. So this package supports exactly:
// HTTP/1.1 (an HTTP/1.0 answer is read and closes the connection);
// Content-Length and chunked bodies both ways; chunk extensions and
// trailers read and dropped; keep-alive; 1xx interim answers skipped
// (101 refused); no Expect: 100-continue, no compression, no
// redirects, no cookies. Parsing is strict: a malformed or oversized
// head, both Content-Length and Transfer-Encoding, unequal
// Content-Lengths, an unknown transfer coding or a body cut short is an
// error of one line, and the connection is not to be reused.
package h1
