package api

// AddStoreKeyRequest is POST /v1/store/keys: a new password of the node's
// store encrypted at rest. It travels only to the node (use TLS off the
// loopback) and is never logged nor audited.
type AddStoreKeyRequest struct {
	Password string `json:"password"`
}

// AddStoreKeyResponse names the key added.
type AddStoreKeyResponse struct {
	ID string `json:"id"`
}
