package dotmesh

import (
	"errors"
	"strings"
	"testing"
)

// FuzzValidateStoreKeyID: exactly 16 lowercase hex digits pass; anything
// else is ErrInvalidArgument in one line.
func FuzzValidateStoreKeyID(f *testing.F) {
	for _, s := range []string{"0123456789abcdef", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "", "../../etc/passwd", "0123456789abcde\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateStoreKeyID(id)
		valid := len(id) == 16 && strings.Trim(id, "0123456789abcdef") == ""
		switch {
		case valid && err != nil:
			t.Fatalf("%q refused: %v", id, err)
		case !valid && !errors.Is(err, ErrInvalidArgument):
			t.Fatalf("%q: %v, want ErrInvalidArgument", id, err)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Fatalf("%q: the error is not one line: %q", id, err)
		}
	})
}
