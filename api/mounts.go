package api

// Mount routes, for frontends that run outside the node's process (the
// Kubernetes FlexVolume driver, which kubelet runs per call):
//
//	POST   /v1/mounts   MountRequest -> dotmesh.Mount (200; repeating it returns the recorded mount)
//	DELETE /v1/mounts   UnmountRequest (204; forgetting an unknown mount is no error)

// MountRequest resolves a volume to a subdot path, creating the subdot if
// needed, and records that Consumer uses it under ID.
type MountRequest struct {
	Volume   string `json:"volume"`   // [namespace/]dot[@branch][.subdot]
	Consumer string `json:"consumer"` // "flex", ...
	ID       string `json:"id"`       // unique per consumer: kubelet's mount directory
	Name     string `json:"name,omitempty"`
}

// UnmountRequest forgets a mount. Volume may be empty: the node then finds
// the mount by Consumer and ID (kubelet's unmount names only the directory).
type UnmountRequest struct {
	Volume   string `json:"volume,omitempty"`
	Consumer string `json:"consumer"`
	ID       string `json:"id"`
}
