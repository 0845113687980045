package dotmesh

import (
	"fmt"
	"strings"
)

// Default names used when a part of a volume name is left out.
const (
	DefaultNamespace = "admin"
	DefaultBranch    = "master"
	// DefaultSubdot is the subdot a name without ".subdot" refers to.
	DefaultSubdot = "__default__"
	// RootSubdot refers to the whole working tree of a branch.
	RootSubdot = "__root__"
	// MaxNameLength bounds every name part.
	MaxNameLength = 64
)

// ValidateName checks one part of a name (namespace, dot, branch or subdot
// name) against ^[A-Za-z0-9_-]{1,64}$. what names the part in the error.
func ValidateName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, what)
	}
	if len(s) > MaxNameLength {
		return fmt.Errorf("%w: %s name %q is %d characters long; the limit is %d", ErrInvalidName, what, truncate(s), len(s), MaxNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("%w: %s name %q contains %q; use only letters, digits, '_' and '-'", ErrInvalidName, what, truncate(s), rune(c))
	}
	return nil
}

// ValidateNewName checks the name of something about to be made (a dot, a
// namespace, a branch): a valid name that does not start with '-' (it
// would read as a flag) or '_' (reserved, as the subdots __default__ and
// __root__ are). Names made before this rule keep working: only
// ValidateName applies when one is looked up, so they can still be used
// and deleted.
func ValidateNewName(what, s string) error {
	if err := ValidateName(what, s); err != nil {
		return err
	}
	switch s[0] {
	case '-':
		return fmt.Errorf("%w: %s name %q starts with '-', which reads as a flag; start it with a letter or digit", ErrInvalidName, what, truncate(s))
	case '_':
		return fmt.Errorf("%w: %s name %q starts with '_', which is reserved; start it with a letter or digit", ErrInvalidName, what, truncate(s))
	}
	return nil
}

// ValidateSubdot checks a subdot name: a valid name that does not start
// with '_' unless it is one of the two reserved names.
func ValidateSubdot(s string) error {
	if err := ValidateName("subdot", s); err != nil {
		return err
	}
	if strings.HasPrefix(s, "_") && s != DefaultSubdot && s != RootSubdot {
		return fmt.Errorf("%w: subdot name %q is reserved (names starting with '_' other than %s and %s)", ErrInvalidName, s, DefaultSubdot, RootSubdot)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// DotName identifies a dot: namespace and name.
type DotName struct {
	Namespace string
	Name      string
}

// String renders the dot name as "namespace/name", omitting the default
// namespace.
func (d DotName) String() string {
	if d.Namespace == "" || d.Namespace == DefaultNamespace {
		return d.Name
	}
	return d.Namespace + "/" + d.Name
}

// Validate checks both parts.
func (d DotName) Validate() error {
	if err := ValidateName("namespace", d.Namespace); err != nil {
		return err
	}
	return ValidateName("dot", d.Name)
}

// ValidateNew checks both parts as names of a new dot (ValidateNewName).
func (d DotName) ValidateNew() error {
	if err := ValidateNewName("namespace", d.Namespace); err != nil {
		return err
	}
	return ValidateNewName("dot", d.Name)
}

// ParseDotName parses "[namespace/]dot".
func ParseDotName(s string) (DotName, error) {
	v, err := ParseVolumeName(s)
	if err != nil {
		return DotName{}, err
	}
	if v.Branch != "" || v.Subdot != "" {
		return DotName{}, fmt.Errorf("%w: %q: expected [namespace/]dot without @branch or .subdot", ErrInvalidName, truncate(s))
	}
	return v.Dot, nil
}

// VolumeName is the parsed form of "[namespace/]dot[@branch][.subdot]",
// the syntax every frontend uses. Branch and Subdot are empty when left out:
// an empty Branch means the dot's current branch, an empty Subdot means
// DefaultSubdot.
type VolumeName struct {
	Dot    DotName
	Branch string
	Subdot string
}

// SubdotOrDefault returns the subdot, or DefaultSubdot when none was named.
func (v VolumeName) SubdotOrDefault() string {
	if v.Subdot == "" {
		return DefaultSubdot
	}
	return v.Subdot
}

// String renders the name back in the shared syntax.
func (v VolumeName) String() string {
	s := v.Dot.String()
	if v.Branch != "" {
		s += "@" + v.Branch
	}
	if v.Subdot != "" {
		s += "." + v.Subdot
	}
	return s
}

// ParseVolumeName parses "[namespace/]dot[@branch][.subdot]". Every part is
// validated; the error names the part that is wrong.
func ParseVolumeName(s string) (VolumeName, error) {
	var v VolumeName
	if s == "" {
		return v, fmt.Errorf("%w: name is empty; expected [namespace/]dot[@branch][.subdot]", ErrInvalidName)
	}
	rest := s
	v.Dot.Namespace = DefaultNamespace
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		v.Dot.Namespace = rest[:i]
		rest = rest[i+1:]
		if err := ValidateName("namespace", v.Dot.Namespace); err != nil {
			return VolumeName{}, err
		}
		if strings.IndexByte(rest, '/') >= 0 {
			return VolumeName{}, fmt.Errorf("%w: %q has more than one '/'; expected [namespace/]dot[@branch][.subdot]", ErrInvalidName, truncate(s))
		}
	}
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		v.Subdot = rest[i+1:]
		rest = rest[:i]
		if err := ValidateSubdot(v.Subdot); err != nil {
			return VolumeName{}, err
		}
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		v.Branch = rest[i+1:]
		rest = rest[:i]
		if err := ValidateName("branch", v.Branch); err != nil {
			return VolumeName{}, err
		}
	}
	v.Dot.Name = rest
	if err := ValidateName("dot", v.Dot.Name); err != nil {
		return VolumeName{}, err
	}
	return v, nil
}
