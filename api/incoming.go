package api

// Incoming transfers (see dotmesh.IncomingTransfer): the transfers a node
// is receiving or was receiving when they were cut off.
//
//	GET  /v1/incoming         []dotmesh.IncomingTransfer
//	POST /v1/incoming/abort   AbortIncomingRequest -> dotmesh.AbortResult

// AbortIncomingRequest ends the unfinished incoming transfers of one dot
// (of one branch of it, when Branch is set) and frees what they stored.
type AbortIncomingRequest struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Branch    string `json:"branch,omitempty"`
}
