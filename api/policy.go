package api

// PolicyRequest sets a policy: a dot's (POST /v1/dots/{ns}/{dot}/policy),
// or a selector's (POST /v1/policies, with Namespace and/or Labels as
// dm's --namespace and --label take them). Every is a period ("15m",
// "1d"); Keep a grid ("last=4,hourly=24,...", empty: keep every commit).
// The answer is the stored dotmesh.Policy.
type PolicyRequest struct {
	Every     string   `json:"every"`
	Keep      string   `json:"keep,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	Labels    []string `json:"labels,omitempty"`
}

// PolicyRemoveRequest removes a selector's policy (POST
// /v1/policies/remove); a dot's is DELETE /v1/dots/{ns}/{dot}/policy.
type PolicyRemoveRequest struct {
	Namespace string   `json:"namespace,omitempty"`
	Labels    []string `json:"labels,omitempty"`
}

// PolicyPruneRequest applies a dot's policy's grid now (POST
// /v1/dots/{ns}/{dot}/policy/prune), or Keep's instead when given. The
// answer is a dotmesh.GCResult (NDJSON progress when asked).
type PolicyPruneRequest struct {
	Keep   string `json:"keep,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// The answer of GET /v1/policies is a list of dotmesh.Policy, and of GET
// /v1/dots/{ns}/{dot}/policy a dotmesh.PolicyStatus.
