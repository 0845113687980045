package bucket

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// MaxNameLen bounds an object name (S3 allows 1024 bytes of key, and the
// prefix of a remote takes some).
const MaxNameLen = 512

// MaxPartLen bounds a part of a name between slashes (a file name).
const MaxPartLen = 255

// ValidateName checks an object name: slash-separated parts of
// [A-Za-z0-9._-], none empty, none starting with a dot (the local kind
// keeps its temporary files there, and "." and ".." are no names), none
// longer than MaxPartLen (a file name), at most MaxNameLen bytes in all. The error wraps dotmesh.ErrInvalidName.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: an object name is empty", dotmesh.ErrInvalidName)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: object name %.40q... is %d bytes long; at most %d are allowed", dotmesh.ErrInvalidName, name, len(name), MaxNameLen)
	}
	if err := checkChars(name); err != nil {
		return fmt.Errorf("%w: object name %q %s", dotmesh.ErrInvalidName, name, err)
	}
	for part := range strings.SplitSeq(name, "/") {
		switch {
		case part == "":
			return fmt.Errorf("%w: object name %q has an empty part (a slash at either end, or two in a row)", dotmesh.ErrInvalidName, name)
		case part[0] == '.':
			return fmt.Errorf("%w: object name %q has a part starting with a dot, which is reserved", dotmesh.ErrInvalidName, name)
		case len(part) > MaxPartLen:
			return fmt.Errorf("%w: object name %.40q... has a part of %d bytes; at most %d are allowed between slashes", dotmesh.ErrInvalidName, name, len(part), MaxPartLen)
		}
	}
	return nil
}

// ValidateListPrefix checks a listing prefix: "" or the start of a valid name
// (it may end in a slash, or in the middle of a part).
func ValidateListPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxNameLen {
		return fmt.Errorf("%w: listing prefix is %d bytes long; at most %d are allowed", dotmesh.ErrInvalidName, len(prefix), MaxNameLen)
	}
	if err := checkChars(prefix); err != nil {
		return fmt.Errorf("%w: listing prefix %q %s", dotmesh.ErrInvalidName, prefix, err)
	}
	// Every prefix of a valid name is itself a valid name, except one ending
	// in a slash ("a/" lists "a/b"), which needs a tail of at least a byte.
	if ValidateName(prefix) == nil {
		return nil
	}
	if strings.HasSuffix(prefix, "/") && ValidateName(prefix+"x") == nil {
		return nil
	}
	return fmt.Errorf("%w: listing prefix %q cannot start a valid object name", dotmesh.ErrInvalidName, prefix)
}

func checkChars(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return fmt.Errorf("has %q at byte %d; only letters, digits, '.', '_', '-' and '/' are allowed", c, i)
		}
	}
	return nil
}

// URL is a parsed store URL: "s3://BUCKET/PREFIX" gives Scheme "s3",
// Host "BUCKET", Path "PREFIX"; "file:///DIR" and a plain absolute path
// give Scheme "file" and Path the cleaned directory. A kind checks Host
// and Path by its own rules.
type URL struct {
	Scheme string
	Host   string
	Path   string
}

func (u URL) String() string {
	if u.Scheme == "file" {
		return "file://" + u.Path
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" {
		s += "/" + u.Path
	}
	return s
}

// ParseURL splits a store URL into scheme, host and path. Errors wrap
// dotmesh.ErrInvalidArgument and say what form is expected.
func ParseURL(s string) (URL, error) {
	bad := func(format string, a ...any) (URL, error) {
		return URL{}, fmt.Errorf("%w: store URL %q: %s", dotmesh.ErrInvalidArgument, s, fmt.Sprintf(format, a...))
	}
	if strings.ContainsAny(s, "\x00\n\r") {
		return bad("contains a control character")
	}
	if strings.HasPrefix(s, "/") {
		return URL{Scheme: "file", Path: filepath.Clean(s)}, nil
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return bad("give s3://BUCKET[/PREFIX], file:///DIR or an absolute directory")
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return bad("scheme %q is not a lower-case URL scheme", scheme)
		}
	}
	if scheme == "file" {
		if !strings.HasPrefix(rest, "/") {
			return bad("a file URL names an absolute directory: file:///DIR")
		}
		return URL{Scheme: "file", Path: filepath.Clean(rest)}, nil
	}
	if strings.ContainsAny(rest, "?#") {
		return bad("a store URL takes no query or fragment; give endpoint and region as options")
	}
	host, path, _ := strings.Cut(rest, "/")
	if strings.Contains(host, "@") {
		return bad("credentials do not go into the URL; give them as options or in the environment")
	}
	if host == "" {
		return bad("no bucket: give %s://BUCKET[/PREFIX]", scheme)
	}
	path = strings.TrimSuffix(path, "/")
	if path != "" {
		if err := ValidateName(path); err != nil {
			return bad("prefix %q: %v", path, strings.TrimPrefix(err.Error(), dotmesh.ErrInvalidName.Error()+": "))
		}
	}
	return URL{Scheme: scheme, Host: host, Path: path}, nil
}
