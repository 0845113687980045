package flex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Options is what a mount call's JSON says, validated.
type Options struct {
	Volume   dotmesh.VolumeName
	ReadOnly bool   // kubernetes.io/readwrite: "ro"
	Pod      string // "namespace/name" of the pod, for `dm list`
}

// Option keys a PersistentVolume or pod volume sets under flexVolume.options.
const (
	OptNamespace = "namespace"
	OptName      = "name"
	OptBranch    = "branch"
	OptSubdot    = "subdot"
)

// maxOptions bounds the JSON kubelet passes (it is a command line argument).
const maxOptions = 64 << 10

// ParseOptions parses the JSON options of a mount call. Values are strings
// (kubelet passes them so); keys under kubernetes.io/ come from kubelet and
// are ignored but for the pod's name and the read-write mode. Anything
// else unknown is refused, so that a typo does not mount the wrong dot.
func ParseOptions(s string) (Options, error) {
	var o Options
	if len(s) > maxOptions {
		return o, fmt.Errorf("the options JSON is %d bytes; the limit is %d", len(s), maxOptions)
	}
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return o, fmt.Errorf("the options are not a JSON object: %w", err)
	}
	if dec.More() || raw == nil {
		return o, fmt.Errorf("the options must be one JSON object")
	}
	var rest bytes.Buffer
	if _, err := rest.ReadFrom(dec.Buffered()); err == nil && strings.TrimSpace(rest.String()) != "" {
		return o, fmt.Errorf("the options must be one JSON object, with nothing after it")
	}
	vals := make(map[string]string, len(raw))
	keys := make([]string, 0, len(raw))
	for k, v := range raw {
		str, ok := v.(string)
		if !ok {
			return o, fmt.Errorf("option %q must be a string (quote it in the volume's options)", k)
		}
		vals[k] = str
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic errors
	for _, k := range keys {
		switch k {
		case OptNamespace, OptName, OptBranch, OptSubdot:
		default:
			if !strings.HasPrefix(k, "kubernetes.io/") {
				return o, fmt.Errorf("unknown option %q; dotmesh understands %s, %s, %s and %s", k, OptNamespace, OptName, OptBranch, OptSubdot)
			}
		}
	}
	if vals[OptName] == "" {
		return o, fmt.Errorf("option %q is missing: set flexVolume.options.name to the dot to mount", OptName)
	}
	o.Volume.Dot = dotmesh.DotName{Namespace: vals[OptNamespace], Name: vals[OptName]}
	if o.Volume.Dot.Namespace == "" {
		o.Volume.Dot.Namespace = dotmesh.DefaultNamespace
	}
	if err := o.Volume.Dot.Validate(); err != nil {
		return o, err
	}
	if b := vals[OptBranch]; b != "" {
		if err := dotmesh.ValidateName("branch", b); err != nil {
			return o, err
		}
		o.Volume.Branch = b
	}
	if sd := vals[OptSubdot]; sd != "" {
		if err := dotmesh.ValidateSubdot(sd); err != nil {
			return o, err
		}
		o.Volume.Subdot = sd
	}
	o.ReadOnly = vals["kubernetes.io/readwrite"] == "ro"
	if pod := vals["kubernetes.io/pod.name"]; pod != "" {
		o.Pod = pod
		if ns := vals["kubernetes.io/pod.namespace"]; ns != "" {
			o.Pod = ns + "/" + pod
		}
	}
	return o, nil
}
