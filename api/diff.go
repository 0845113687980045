package api

import "github.com/dotmesh-io/dotmesh/dotmesh"

// Routes of "seeing what changed", tags and refs. Roles are in package
// server's route table.
//
//	GET    /v1/dots/{ns}/{dot}/diff?branch=&from=&to=&parent=1&path=P&path=Q&content=1&context=N&rows=1&max_rows=N&max_files=N&max_patch_bytes=N
//	                                               -> dotmesh.Diff      (read)
//	GET    /v1/dots/{ns}/{dot}/status?branch=&rows=1 -> dotmesh.Status  (read)
//	GET    /v1/dots/{ns}/{dot}/tags                -> []dotmesh.Tag     (read)
//	POST   /v1/dots/{ns}/{dot}/tags  TagRequest    -> dotmesh.Tag       (write)
//	DELETE /v1/dots/{ns}/{dot}/tags/{tag}          -> 204               (write)
//	POST   /v1/dots/{ns}/{dot}/branches/{branch}/rename RenameBranchRequest -> dotmesh.Branch (write)
//	GET    /v1/dots/{ns}/{dot}/history?branch=&ref=REF&skip=N&limit=N -> HistoryPage (read;
//	       Accept: HistoryLines: a HistoryHead line, then a line per commit)
//
// A diff's "to" empty means the working state of branch; "from" empty
// means HEAD; parent=1 compares "to" with its parent, or with nothing
// when it has none here (dotmesh.DiffOptions.Parent).

// TagRequest creates a tag.
type TagRequest struct {
	Name    string `json:"name"`
	Branch  string `json:"branch,omitempty"`
	Ref     string `json:"ref,omitempty"` // empty: HEAD
	Message string `json:"message,omitempty"`
}

// RenameBranchRequest renames a branch.
type RenameBranchRequest struct {
	Name string `json:"name"`
}

// HistoryPage is a page of a ref's history, newest first.
type HistoryPage struct {
	Commits []dotmesh.Commit `json:"commits"`
	More    bool             `json:"more,omitempty"`
	// Refs names the branches ("master") and tags ("tag: v1") at each
	// listed commit, as git log --decorate shows them.
	Refs map[dotmesh.CommitID][]string `json:"refs,omitempty"`
	// Current is the dot's current branch, which git log marks "HEAD ->":
	// a log is one request.
	Current string `json:"current,omitempty"`
}

// HistoryLines is the media type of a history page as lines, which a
// client asks for in its Accept header (a node that does not know it
// answers a HistoryPage as application/json): first a HistoryHead line,
// then each commit as one line of its JSON encoding (a dotmesh.Commit),
// newest first. A client finds each record with a newline instead of a
// JSON scanner and decodes the usual shape of a record without
// reflection: a page of 10,000 commits was half of `dm log`'s CPU in the
// client's JSON decoder.
const HistoryLines = "application/vnd.dotmesh.history-lines"

// HistoryHead is the first line of a HistoryLines answer: a HistoryPage
// without its commits, and how many follow (a shorter answer was cut).
type HistoryHead struct {
	Count   int                           `json:"count"`
	More    bool                          `json:"more,omitempty"`
	Refs    map[dotmesh.CommitID][]string `json:"refs,omitempty"`
	Current string                        `json:"current,omitempty"`
}
