package dotmesh

import (
	"fmt"
	"strconv"
	"strings"
)

// Ref is a parsed commit reference, as in git: a base followed by a
// number of first-parent generations to walk back (^, ^^, ~N). The base
// is HEAD (or @) of the branch in question, a branch or tag name, or a
// commit id or unique prefix of one. Which of a name and a prefix a base
// is, only the dot can tell: a name wins, as in git.
type Ref struct {
	// Name is the base as written when it is not HEAD: a branch or tag
	// name, or a commit id prefix. Empty for HEAD-relative refs.
	Name string
	// Prefix is Name in lower case when Name can be a commit id prefix
	// (at least MinPrefix hex digits, at most a whole id); else empty.
	Prefix string
	// Back is how many first-parent generations to go back from the base.
	Back int
}

// MinPrefix is the shortest commit id prefix accepted, so that a typo does
// not silently match a random commit.
const MinPrefix = 4

// maxBack bounds HEAD~N so that a huge N is an error, not a long walk.
const maxBack = 1 << 20

const refHelp = "use HEAD, a branch or tag name, or a commit id, optionally followed by ^, ^^ or ~N"

// ParseRef parses a commit reference. Accepted: "HEAD" (or "@"), a branch
// or tag name, a commit id or a prefix of at least MinPrefix hex digits,
// each optionally followed by ^ (repeatable) and ~N: "HEAD~2^",
// "master^", "v1~3", "abcd1234^".
func ParseRef(s string) (Ref, error) {
	var r Ref
	if s == "" {
		return r, fmt.Errorf("%w: empty ref; %s", ErrInvalidName, refHelp)
	}
	base, suffix := s, ""
	if i := strings.IndexAny(s, "^~"); i >= 0 {
		base, suffix = s[:i], s[i:]
	}
	if base != "HEAD" && base != "@" {
		if err := ValidateName("ref", base); err != nil {
			return Ref{}, fmt.Errorf("%w: ref %q: the base is neither HEAD nor a branch, tag or commit; %s", ErrInvalidName, truncate(s), refHelp)
		}
		r.Name = base
		if len(base) >= MinPrefix && ValidateID("commit", strings.ToLower(base), true) == nil {
			r.Prefix = strings.ToLower(base)
		}
	}
	for suffix != "" {
		switch suffix[0] {
		case '^':
			r.Back++
			suffix = suffix[1:]
		case '~':
			j := 1
			for j < len(suffix) && suffix[j] >= '0' && suffix[j] <= '9' {
				j++
			}
			n := 1
			if j > 1 {
				v, err := strconv.Atoi(suffix[1:j])
				if err != nil || v > maxBack {
					return Ref{}, fmt.Errorf("%w: ref %q: generation count %q is too large", ErrInvalidName, truncate(s), suffix[1:j])
				}
				n = v
			}
			r.Back += n
			suffix = suffix[j:]
		default:
			return Ref{}, fmt.Errorf("%w: ref %q: unexpected %q; %s", ErrInvalidName, truncate(s), suffix[:1], refHelp)
		}
		if r.Back > maxBack {
			return Ref{}, fmt.Errorf("%w: ref %q goes back too far", ErrInvalidName, truncate(s))
		}
	}
	return r, nil
}

// String renders the ref in canonical form.
func (r Ref) String() string {
	s := r.Name
	if s == "" {
		s = "HEAD"
	}
	if r.Back > 0 {
		s += "~" + strconv.Itoa(r.Back)
	}
	return s
}
