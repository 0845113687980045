package dotmesh

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Labels are key/value pairs on a dot that choose dots for operations on
// many at once (a label selector), as Kubernetes labels choose pods. They
// are kept in the dot's registry record, so every ClusterStore keeps them
// and a cluster's nodes share them. They are the dot's on this node only:
// a transfer does not carry them (the receiver keeps its own).

// Limits of label keys and values, as Kubernetes has them.
const (
	MaxLabelNameLength   = 63  // a key's name part, and a value
	MaxLabelPrefixLength = 253 // a key's DNS subdomain prefix
)

// ValidateLabelKey checks a label key: an optional DNS subdomain prefix
// and '/', then a name of at most 63 letters, digits, '-', '_' and '.',
// beginning and ending with a letter or digit (Kubernetes' qualified name).
func ValidateLabelKey(k string) error {
	if err := labelKeyProblem(k); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return nil
}

// ValidateLabelValue checks a label value: empty, or a name as in a key.
func ValidateLabelValue(v string) error {
	if err := labelValueProblem(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	return nil
}

func labelKeyProblem(k string) error {
	name := k
	if i := strings.IndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if err := validateLabelPrefix(prefix); err != nil {
			return fmt.Errorf("label key %q: %v", truncate(k), err)
		}
	}
	if name == "" {
		return fmt.Errorf("label key %q has no name (KEY or PREFIX/KEY)", truncate(k))
	}
	if err := validateLabelName(name); err != nil {
		return fmt.Errorf("label key %q: %v", truncate(k), err)
	}
	return nil
}

func labelValueProblem(v string) error {
	if v == "" {
		return nil
	}
	if err := validateLabelName(v); err != nil {
		return fmt.Errorf("label value %q: %v", truncate(v), err)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func validateLabelName(s string) error {
	if len(s) > MaxLabelNameLength {
		return fmt.Errorf("%d characters long; the limit is %d", len(s), MaxLabelNameLength)
	}
	if !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return errors.New("must begin and end with a letter or digit")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("contains %q; use only letters, digits, '-', '_' and '.'", rune(c))
		}
	}
	return nil
}

// validateLabelPrefix checks a DNS subdomain (RFC 1123): lowercase
// labels of letters, digits and '-', joined by dots.
func validateLabelPrefix(p string) error {
	if p == "" || len(p) > MaxLabelPrefixLength {
		return fmt.Errorf("the prefix before '/' must be a DNS subdomain of 1 to %d characters", MaxLabelPrefixLength)
	}
	for _, part := range strings.Split(p, ".") {
		if part == "" || len(part) > 63 || part[0] == '-' || part[len(part)-1] == '-' {
			return fmt.Errorf("prefix %q is not a DNS subdomain (lowercase letters, digits, '-' and '.')", truncate(p))
		}
		for i := 0; i < len(part); i++ {
			if c := part[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("prefix %q is not a DNS subdomain (lowercase letters, digits, '-' and '.')", truncate(p))
			}
		}
	}
	return nil
}

// LabelChange says how to change a dot's labels.
type LabelChange struct {
	Set    map[string]string // keys to set to these values
	Remove []string          // keys to remove (absent ones are no error)
	// Overwrite allows Set to change a key's existing value; without it
	// such a change is ErrAlreadyExists and nothing changes.
	Overwrite bool
}

// Validate checks every key and value, and that no key is both set and
// removed.
func (ch LabelChange) Validate() error {
	for _, k := range slices.Sorted(maps.Keys(ch.Set)) {
		if err := ValidateLabelKey(k); err != nil {
			return err
		}
		if err := ValidateLabelValue(ch.Set[k]); err != nil {
			return err
		}
	}
	for _, k := range ch.Remove {
		if err := ValidateLabelKey(k); err != nil {
			return err
		}
		if _, ok := ch.Set[k]; ok {
			return fmt.Errorf("%w: label %s is both set and removed", ErrInvalidArgument, k)
		}
	}
	return nil
}

// ParseLabelChange parses label arguments as kubectl label takes them:
// KEY=VALUE sets, KEY- removes.
func ParseLabelChange(args []string) (LabelChange, error) {
	var ch LabelChange
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			if ch.Set == nil {
				ch.Set = map[string]string{}
			}
			if old, dup := ch.Set[k]; dup && old != v {
				return LabelChange{}, fmt.Errorf("%w: label %s is given twice, with different values", ErrInvalidArgument, truncate(k))
			}
			ch.Set[k] = v
			continue
		}
		if k, ok := strings.CutSuffix(a, "-"); ok {
			ch.Remove = append(ch.Remove, k)
			continue
		}
		return LabelChange{}, fmt.Errorf("%w: label argument %q is neither KEY=VALUE (set) nor KEY- (remove)", ErrInvalidArgument, truncate(a))
	}
	if len(ch.Set) == 0 && len(ch.Remove) == 0 {
		return LabelChange{}, fmt.Errorf("%w: no label to set (KEY=VALUE) or remove (KEY-)", ErrInvalidArgument)
	}
	return ch, ch.Validate()
}

// labelConflictRetries bounds the re-reads when another write to the dot's
// record (a checkout, a push's upstream) lands between read and write.
const labelConflictRetries = 5

// Label changes a dot's labels in one registry write and returns the dot.
func (n *Node) Label(ctx context.Context, name DotName, ch LabelChange) (*Dot, error) {
	if err := name.Validate(); err != nil {
		return nil, err
	}
	if err := ch.Validate(); err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		d, rev, err := n.reg.dotByName(ctx, name)
		if err != nil {
			return nil, err
		}
		labels := maps.Clone(d.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		for _, k := range slices.Sorted(maps.Keys(ch.Set)) {
			if old, ok := labels[k]; ok && old != ch.Set[k] && !ch.Overwrite {
				return nil, fmt.Errorf("%w: dot %s has label %s=%s already", ErrAlreadyExists, name, k, old)
			}
			labels[k] = ch.Set[k]
		}
		for _, k := range ch.Remove {
			delete(labels, k)
		}
		if maps.Equal(labels, d.Labels) || len(labels) == 0 && len(d.Labels) == 0 {
			return d, nil
		}
		if len(labels) == 0 {
			labels = nil
		}
		d.Labels = labels
		if _, err = n.reg.putDot(ctx, d, rev); err == nil {
			n.log.InfoContext(ctx, "labelled dot", "dot", name.String(), "labels", d.Labels)
			return d, nil
		}
		if !errors.Is(err, ErrConflict) || try >= labelConflictRetries {
			return nil, err
		}
	}
}

// Selector chooses dots by namespace and labels; the zero Selector
// chooses every dot.
type Selector struct {
	Namespace string // "" for every namespace
	Labels    []LabelRequirement
}

// LabelRequirement is one condition on a dot's labels.
type LabelRequirement struct {
	Key   string `json:"key"`
	Op    string `json:"op"` // "=", "!=", "exists", "!exists"
	Value string `json:"value,omitempty"`
}

// String writes the requirement as ParseLabelRequirement reads it.
func (r LabelRequirement) String() string {
	switch r.Op {
	case "exists":
		return r.Key
	case "!exists":
		return "!" + r.Key
	}
	return r.Key + r.Op + r.Value
}

// ParseLabelRequirement parses KEY=VALUE (also KEY==VALUE), KEY!=VALUE,
// KEY (the dot has the label) or !KEY (it has not).
func ParseLabelRequirement(s string) (LabelRequirement, error) {
	var r LabelRequirement
	switch {
	case strings.Contains(s, "!="):
		r.Key, r.Value, _ = strings.Cut(s, "!=")
		r.Op = "!="
	case strings.Contains(s, "="):
		r.Key, r.Value, _ = strings.Cut(s, "=")
		r.Value = strings.TrimPrefix(r.Value, "=")
		r.Op = "="
	case strings.HasPrefix(s, "!"):
		r.Key, r.Op = s[1:], "!exists"
	default:
		r.Key, r.Op = s, "exists"
	}
	err := labelKeyProblem(r.Key)
	if err == nil {
		err = labelValueProblem(r.Value)
	}
	if err != nil {
		return LabelRequirement{}, fmt.Errorf("%w: selector %q: %v", ErrInvalidArgument, truncate(s), err)
	}
	return r, nil
}

// ParseSelector parses a namespace ("" for all) and label requirements,
// which must all hold.
func ParseSelector(namespace string, labels []string) (Selector, error) {
	sel := Selector{Namespace: namespace}
	if namespace != "" {
		if err := ValidateName("namespace", namespace); err != nil {
			return Selector{}, err
		}
	}
	for _, l := range labels {
		r, err := ParseLabelRequirement(l)
		if err != nil {
			return Selector{}, err
		}
		sel.Labels = append(sel.Labels, r)
	}
	return sel, nil
}

// Matches reports whether d is chosen.
func (s Selector) Matches(d *Dot) bool {
	if s.Namespace != "" && d.Namespace != s.Namespace {
		return false
	}
	for _, r := range s.Labels {
		v, ok := d.Labels[r.Key]
		switch r.Op {
		case "=":
			ok = ok && v == r.Value
		case "!=":
			ok = !ok || v != r.Value
		case "!exists":
			ok = !ok
		}
		if !ok {
			return false
		}
	}
	return true
}

// String writes the selector for messages.
func (s Selector) String() string {
	var parts []string
	if s.Namespace != "" {
		parts = append(parts, "namespace "+s.Namespace)
	}
	for _, r := range s.Labels {
		parts = append(parts, r.String())
	}
	if len(parts) == 0 {
		return "every dot"
	}
	return strings.Join(parts, ", ")
}

// SelectDots returns the names of the dots s chooses, sorted by namespace
// and name.
func (n *Node) SelectDots(ctx context.Context, s Selector) ([]DotName, error) {
	dots, err := n.reg.dots(ctx)
	if err != nil {
		return nil, err
	}
	var out []DotName
	for _, d := range dots {
		if s.Matches(d) {
			out = append(out, d.DotName())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
