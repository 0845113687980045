package btrfs

import "github.com/dotmesh-io/dotmesh/backend/framing"

// streamFormat frames `btrfs send` output (see package framing). btrfs
// streams carry per-command CRCs but nothing that detects a stream cut
// short between commands; the framing's trailer does:
//
//	magic "dmbtrfs\x01" | kind (1: incremental, 0: full) | commit id (32) | base id (32, zero when full)
//	{ uint32 n (1..MaxFrame) | n bytes }*
//	uint32 0 | uint64 payload length | BLAKE3-256 (32)
var streamFormat = framing.Format{
	Name:        "btrfs stream",
	Magic:       "dmbtrfs\x01",
	Full:        0,
	Incremental: 1,
}
