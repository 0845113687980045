package api

import "github.com/dotmesh-io/dotmesh/dotmesh"

// Access routes: users, keys, sharing and the audit. The role each needs
// is in package server's route table; "self" means the user named in the
// path or an admin, and a read-only key may not use any route that
// changes something.
//
//	GET    /v1/me                                  -> dotmesh.Principal              (any authenticated caller)
//	GET    /v1/users                               -> []dotmesh.User                 (admin)
//	POST   /v1/users                 AddUserRequest -> NewKeyResponse               (admin)
//	DELETE /v1/users/{user}                        -> 204                            (admin)
//	GET    /v1/users/{user}/keys                   -> []dotmesh.KeyInfo              (self)
//	POST   /v1/users/{user}/keys     NewKeyRequest -> NewKeyResponse                (self)
//	DELETE /v1/users/{user}/keys/{id}              -> 204                            (self)
//	GET    /v1/dots/{ns}/{dot}/sharing             -> dotmesh.Sharing                (owner)
//	PUT    /v1/dots/{ns}/{dot}/sharing/{user} ShareRequest -> 204                   (owner)
//	DELETE /v1/dots/{ns}/{dot}/sharing/{user}      -> 204                            (owner)
//	PUT    /v1/dots/{ns}/{dot}/visibility VisibilityRequest -> 204                  (owner)
//	GET    /v1/audit?dot=NS/NAME&before=ID&limit=N -> AuditPage  (admin; the dot's owner with dot=)

// AddUserRequest creates a user and their first key.
type AddUserRequest struct {
	Name  string `json:"name"`
	Label string `json:"label,omitempty"` // the first key's label
}

// NewKeyRequest makes another key for a user.
type NewKeyRequest struct {
	Label    string `json:"label,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// NewKeyResponse carries a new key's secret: the only time it is sent.
type NewKeyResponse struct {
	User   dotmesh.User    `json:"user"`
	Key    dotmesh.KeyInfo `json:"key"`
	Secret string          `json:"secret"`
}

// ShareRequest gives a user a role on a dot: "read" or "write".
type ShareRequest struct {
	Role dotmesh.Role `json:"role"`
}

// VisibilityRequest makes a dot "public" or "private".
type VisibilityRequest struct {
	Visibility dotmesh.Visibility `json:"visibility"`
}

// AuditPage is a page of audit records, newest first.
type AuditPage struct {
	Records []dotmesh.AuditRecord `json:"records"`
	Next    string                `json:"next,omitempty"` // pass as before= for the next page
}
