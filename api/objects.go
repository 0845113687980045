package api

import "github.com/dotmesh-io/dotmesh/dotmesh"

// Wire types of the object have/want exchange (dotmesh.ObjectTransport).
//
//	GET  /v1/dots/{ns}/{dot}/transfer/commits/{id}/objects?format=&base=&offset=
//	     -> ObjectsPage (sending node: the commit's stream objects, paged)
//	POST /v1/dots/{ns}/{dot}/transfer/have?branch=   HaveRequest -> HaveResponse
//	     (receiving node: which of these it holds)
//	POST /v1/dots/{ns}/{dot}/transfer/commits/{id}/fetch   FetchRequest
//	     -> the commit's stream without the objects the filter marks

// ObjectsPage is one page of a commit's object list.
type ObjectsPage struct {
	Total  int                `json:"total"`  // objects in the whole list
	Offset int                `json:"offset"` // index of IDs[0]
	Digest string             `json:"digest"` // dotmesh.ObjectListDigest of the whole list
	IDs    []dotmesh.ObjectID `json:"ids"`    // at most dotmesh.MaxObjectBatch
}

// HaveRequest asks a receiving node which of IDs it holds.
type HaveRequest struct {
	Commit dotmesh.CommitID   `json:"commit"`
	Format string             `json:"format"`
	IDs    []dotmesh.ObjectID `json:"ids"` // at most dotmesh.MaxObjectBatch
}

// HaveResponse answers a HaveRequest: bit i (least significant first) of
// Have is set when the node holds IDs[i]. JSON: base64.
type HaveResponse struct {
	Have []byte `json:"have"`
}

// FetchRequest asks for a commit's stream without some objects.
type FetchRequest struct {
	Format string                `json:"format"`
	Base   *dotmesh.CommitID     `json:"base,omitempty"`
	Filter *dotmesh.ObjectFilter `json:"filter"`
}
