package api

// Routes for database sources of dump-backed dots:
//
//	GET    /v1/dots/{ns}/{dot}/sources?branch=                 []dotmesh.Source (URLs redacted)
//	POST   /v1/dots/{ns}/{dot}/sources                         AddSourceRequest (201, no body)
//	DELETE /v1/dots/{ns}/{dot}/sources/{subdot}?branch=
//	POST   /v1/dots/{ns}/{dot}/sources/{subdot}/lifecycle      SourceLifecycleRequest (204)

// AddSourceRequest binds Subdot of Branch (empty = current) to a database.
type AddSourceRequest struct {
	Branch     string `json:"branch,omitempty"`
	Subdot     string `json:"subdot"`
	Kind       string `json:"kind"`
	URL        string `json:"url"`
	InitSchema string `json:"init_schema,omitempty"` // file contents, sent by the client
}

// SourceLifecycleRequest runs activate, deactivate or collect-garbage.
type SourceLifecycleRequest struct {
	Branch string `json:"branch,omitempty"`
	Action string `json:"action"`
}
