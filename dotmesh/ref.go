package dotmesh

import (
	"fmt"
	"strconv"
	"strings"
)

// Ref is a parsed commit reference: either HEAD followed by a number of
// generations to walk back (HEAD, HEAD^, HEAD^^, HEAD~3, HEAD~2^), or a
// commit id or unique prefix of one.
type Ref struct {
	// Prefix is a commit id or prefix; empty for HEAD-relative refs.
	Prefix string
	// Back is how many first-parent generations to go back from HEAD or
	// from the commit named by Prefix.
	Back int
}

// MinPrefix is the shortest commit id prefix accepted, so that a typo does
// not silently match a random commit.
const MinPrefix = 4

// maxBack bounds HEAD~N so that a huge N is an error, not a long walk.
const maxBack = 1 << 20

// ParseRef parses a commit reference. Accepted: "HEAD", "HEAD^", "HEAD^^",
// "HEAD~N", combinations like "HEAD~2^", and a commit id or a prefix of at
// least MinPrefix hex digits, optionally followed by ^ or ~N too.
func ParseRef(s string) (Ref, error) {
	var r Ref
	if s == "" {
		return r, fmt.Errorf("%w: empty ref; use HEAD, HEAD^, HEAD~N or a commit id", ErrInvalidName)
	}
	base, suffix := s, ""
	if i := strings.IndexAny(s, "^~"); i >= 0 {
		base, suffix = s[:i], s[i:]
	}
	if base != "HEAD" && base != "@" {
		if len(base) < MinPrefix {
			return Ref{}, fmt.Errorf("%w: ref %q is neither HEAD nor a commit id prefix of at least %d hex digits", ErrInvalidName, truncate(s), MinPrefix)
		}
		if err := ValidateID("commit", strings.ToLower(base), true); err != nil {
			return Ref{}, fmt.Errorf("%w: ref %q is neither HEAD nor a commit id (hex digits)", ErrInvalidName, truncate(s))
		}
		r.Prefix = strings.ToLower(base)
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
			return Ref{}, fmt.Errorf("%w: ref %q: unexpected %q; use HEAD, HEAD^, HEAD~N or a commit id", ErrInvalidName, truncate(s), suffix[:1])
		}
		if r.Back > maxBack {
			return Ref{}, fmt.Errorf("%w: ref %q goes back too far", ErrInvalidName, truncate(s))
		}
	}
	return r, nil
}

// String renders the ref in canonical form.
func (r Ref) String() string {
	s := r.Prefix
	if s == "" {
		s = "HEAD"
	}
	if r.Back > 0 {
		s += "~" + strconv.Itoa(r.Back)
	}
	return s
}
