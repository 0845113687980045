package api

// LabelRequest changes a dot's labels (POST /v1/dots/{ns}/{dot}/labels):
// Set keys to values, Remove keys; Overwrite lets Set change a key's value.
// The answer is the dot (dotmesh.Dot) with its labels.
type LabelRequest struct {
	Set       map[string]string `json:"set,omitempty"`
	Remove    []string          `json:"remove,omitempty"`
	Overwrite bool              `json:"overwrite,omitempty"`
}
