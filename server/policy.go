package server

import (
	"context"
	"net/http"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// policyRoutes: a dot's policy needs write on it to set, remove or prune
// by, read to see; a selector's policy chooses dots by labels, so any
// dot (also ones made later), and is the admin's.
func (s *server) policyRoutes() []route {
	return []route{
		{method: "GET", pattern: "/v1/policies", access: accessAuthenticated, name: "list policies", h: s.listPolicies},
		{method: "POST", pattern: "/v1/policies", access: accessAdmin, name: "set a selector's policy", audit: "policy-set", h: s.setSelectorPolicy},
		{method: "POST", pattern: "/v1/policies/remove", access: accessAdmin, name: "remove a selector's policy", audit: "policy-remove", h: s.removeSelectorPolicy},
		{method: "GET", pattern: "/v1/dots/{ns}/{dot}/policy", access: accessDot, need: dotmesh.RoleRead, name: "show a policy", h: s.policyStatus},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/policy", access: accessDot, need: dotmesh.RoleWrite, name: "set a policy", audit: "policy-set", h: s.setDotPolicy},
		{method: "DELETE", pattern: "/v1/dots/{ns}/{dot}/policy", access: accessDot, need: dotmesh.RoleWrite, name: "remove a policy", audit: "policy-remove", h: s.removeDotPolicy},
		{method: "POST", pattern: "/v1/dots/{ns}/{dot}/policy/prune", access: accessDot, need: dotmesh.RoleWrite, name: "prune by a policy", audit: "policy-prune", answer: answerGC, h: s.prunePolicy},
	}
}

// policyOf validates a request into a policy without its target.
func policyOf(p dotmesh.Principal, req *api.PolicyRequest) (dotmesh.Policy, error) {
	every, err := dotmesh.ParseEvery(req.Every)
	if err != nil {
		return dotmesh.Policy{}, err
	}
	pol := dotmesh.Policy{Every: every, By: p.User}
	if req.Keep != "" {
		if pol.Keep, err = dotmesh.ParseKeepGrid(req.Keep); err != nil {
			return dotmesh.Policy{}, err
		}
	}
	return pol, nil
}

// listPolicies answers the selectors' policies and those of the dots the
// caller may read.
func (s *server) listPolicies(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	all, err := s.node.Policies().List(r.Context())
	var out []dotmesh.Policy
	if err == nil {
		var dots, sels []dotmesh.Policy
		for _, p := range all {
			if p.Dot != nil {
				dots = append(dots, p)
			} else {
				sels = append(sels, p)
			}
		}
		if dots, err = readable(r.Context(), s, principal(r), dots, func(p dotmesh.Policy) dotmesh.DotName { return *p.Dot }); err == nil {
			out = append(dots, sels...)
		}
	}
	reply(w, http.StatusOK, nonNil(out), err)
}

func (s *server) setSelectorPolicy(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	req, ok := jsonBody[api.PolicyRequest](w, r)
	if !ok {
		return
	}
	pol, err := policyOf(principal(r), req)
	if err != nil {
		writeError(w, err)
		return
	}
	sel, err := dotmesh.ParseSelector(req.Namespace, req.Labels)
	if err != nil {
		writeError(w, err)
		return
	}
	pol.Selector = &sel
	out, err := s.node.Policies().Set(r.Context(), pol)
	reply(w, http.StatusOK, out, err)
}

func (s *server) removeSelectorPolicy(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	req, ok := jsonBody[api.PolicyRemoveRequest](w, r)
	if !ok {
		return
	}
	sel, err := dotmesh.ParseSelector(req.Namespace, req.Labels)
	if err == nil {
		err = s.node.Policies().RemoveSelector(r.Context(), sel)
	}
	reply(w, http.StatusOK, struct{}{}, err)
}

func (s *server) policyStatus(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	st, err := s.node.Policies().Status(r.Context(), name)
	reply(w, http.StatusOK, st, err)
}

func (s *server) setDotPolicy(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.PolicyRequest](w, r)
	if !ok {
		return
	}
	pol, err := policyOf(principal(r), req)
	if err == nil && (req.Namespace != "" || len(req.Labels) > 0) {
		err = &dotmesh.InvalidOptionError{Option: "PolicyRequest.Labels", Problem: "a dot's policy takes no selector; set a selector's with POST /v1/policies"}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	pol.Dot = &name
	out, err := s.node.Policies().Set(r.Context(), pol)
	reply(w, http.StatusOK, out, err)
}

func (s *server) removeDotPolicy(w http.ResponseWriter, r *http.Request) {
	name, ok := dotName(w, r)
	if !ok || !noQuery(w, r) {
		return
	}
	reply(w, http.StatusOK, struct{}{}, s.node.Policies().RemoveDot(r.Context(), name))
}

func (s *server) prunePolicy(w http.ResponseWriter, r *http.Request) {
	name, req, ok := dotRequest[api.PolicyPruneRequest](w, r)
	if !ok {
		return
	}
	opts := dotmesh.PruneOptions{DryRun: req.DryRun}
	if req.Keep != "" {
		g, err := dotmesh.ParseKeepGrid(req.Keep)
		if err != nil {
			writeError(w, err)
			return
		}
		opts.Grid = &g
	}
	s.answerLong(w, r, http.StatusOK, func(ctx context.Context) (any, error) {
		return s.node.Policies().Prune(ctx, name, opts)
	})
}
