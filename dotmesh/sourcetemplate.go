package dotmesh

import (
	"sort"
	"strings"
)

// Source templates. A commit of a branch with sources records each
// binding in its Info as InfoSourcePrefix+SUBDOT+".kind" and
// InfoSourcePrefix+SUBDOT+".url" (the URL without its password), beside
// the dump's other facts. Info travels with the commit record (natively
// as sent, and kept across the neutral stream, see keepSourceTemplates),
// so the receiving node can bind the same subdots to its own databases.
// Passwords never travel.
const InfoSourcePrefix = "source."

// SourceTemplate is one binding a commit recorded.
type SourceTemplate struct {
	Subdot string `json:"subdot"`
	Kind   string `json:"kind"`
	URL    string `json:"url"` // without a password
}

// SourceTemplates returns the bindings recorded in a commit's Info, by
// subdot; keys that do not name a valid subdot with both a kind and a URL
// are not templates.
func SourceTemplates(info CommitInfo) []SourceTemplate {
	var out []SourceTemplate
	for k, kind := range info {
		rest, ok := strings.CutPrefix(k, InfoSourcePrefix)
		if !ok {
			continue
		}
		subdot, ok := strings.CutSuffix(rest, ".kind")
		if !ok || ValidateSubdot(subdot) != nil || subdot == RootSubdot || kind == "" {
			continue
		}
		url := info[InfoSourcePrefix+subdot+".url"]
		if url == "" {
			continue
		}
		out = append(out, SourceTemplate{Subdot: subdot, Kind: kind, URL: url})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subdot < out[j].Subdot })
	return out
}

// keepSourceTemplates copies the templates of the sender's Info into the
// receiving backend's facts of the same commit (the neutral stream
// records the receiver's facts, which know nothing of the sender's
// databases).
func keepSourceTemplates(dst, sender CommitInfo) CommitInfo {
	for _, st := range SourceTemplates(sender) {
		if dst == nil {
			dst = CommitInfo{}
		}
		for _, k := range []string{InfoSourcePrefix + st.Subdot + ".kind", InfoSourcePrefix + st.Subdot + ".url"} {
			if _, ok := dst[k]; !ok {
				dst[k] = sender[k]
			}
		}
	}
	return dst
}
