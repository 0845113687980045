package dotmesh

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseHook: the hook spec parser (what `dm hook set` gives it)
// either refuses with ErrInvalidArgument, or returns a hook that
// validates, whose stage is the one asked for, and that survives the
// registry's JSON unchanged.
func FuzzParseHook(f *testing.F) {
	f.Add("pre-commit", "/bin/sh\x00-c\x00exit 0", "", "", "30s")
	f.Add("post-commit", "", "http://127.0.0.1:8080/done", "", "")
	f.Add("quiesce", "postgresql", "postgres://postgres@/postgres?host=/run/postgresql", "", "1m")
	f.Add("quiesce", "mysql", "mysql://root:pw@unix(/run/mysqld/mysqld.sock)/mysql", "", "")
	f.Add("quiesce", "fsfreeze", "", "data", "5s")
	f.Add("quiesce", "fsfreeze", "", "_x", "-1s")
	f.Add("pre-push", "true", "", "", "2h")
	f.Fuzz(func(t *testing.T, stage, args, hookURL, subdot, timeout string) {
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\x00")
		}
		h, err := ParseHook(stage, argv, hookURL, subdot, timeout)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrInvalidName) {
				t.Fatalf("ParseHook refused with %v, not ErrInvalidArgument", err)
			}
			if strings.ContainsRune(err.Error(), '\n') {
				t.Fatalf("a refusal is one line: %q", err)
			}
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("ParseHook returned a hook that does not validate: %+v: %v", h, err)
		}
		if h.Stage != stage {
			t.Fatalf("stage %q became %q", stage, h.Stage)
		}
		if h.TimeoutOrDefault() <= 0 || h.TimeoutOrDefault() > MaxHookTimeout {
			t.Fatalf("timeout %s out of bounds", h.TimeoutOrDefault())
		}
		if strings.Contains(h.Redacted().URL, ":"+"secretpw@") {
			t.Fatalf("redaction kept the password: %q", h.Redacted().URL)
		}
		rec, err := decodeHooks(KV{Key: "hooks/x", Value: encode(hooksRecord{Dot: "d", Hooks: []Hook{h}})})
		if err != nil {
			t.Fatalf("a parsed hook does not read back from the registry: %v", err)
		}
		if !reflect.DeepEqual(rec.Hooks[0], h) {
			t.Fatalf("registry round trip changed the hook: %+v -> %+v", h, rec.Hooks[0])
		}
	})
}

// FuzzHooksRecord: a registry value under hooks/ either decodes to
// hooks that all validate, or is refused with ErrCorrupt: a record
// nobody could have set runs nothing.
func FuzzHooksRecord(f *testing.F) {
	f.Add([]byte(`{"dot":"d","hooks":[{"stage":"pre-commit","kind":"command","command":["true"],"timeout":0}]}`))
	f.Add([]byte(`{"dot":"d","hooks":[{"stage":"quiesce","kind":"fsfreeze","subdot":"../x"}]}`))
	f.Add([]byte(`{"hooks":[{"stage":"quiesce","kind":"mysql","url":"mysql://a"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decodeHooks(KV{Key: "hooks/x", Value: data})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("refused with %v, not ErrCorrupt", err)
			}
			return
		}
		for _, h := range rec.Hooks {
			if err := h.Validate(); err != nil {
				t.Fatalf("decoded an invalid hook %+v: %v", h, err)
			}
		}
		if _, err := json.Marshal(rec); err != nil {
			t.Fatal(err)
		}
	})
}
