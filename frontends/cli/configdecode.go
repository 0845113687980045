package cli

import "unicode/utf8"

// decodeConfigFast decodes a config of the shape SaveConfig writes: an
// object of the known field names, spelled as SaveConfig spells them,
// whose strings have no escapes, control characters or invalid UTF-8,
// and no bucket remote. It reports false for anything else, which
// encoding/json then decodes (and words any error of).
// encoding/json's first decode in a process, its reflection over the
// types and the page faults of its code, took ~0.3 ms of every dm that
// reads the config (a commit's time from exec to the dial: 1.1 ms).
// FuzzDecodeConfigFast checks that what it takes it decodes as
// encoding/json does.
func decodeConfigFast(b []byte) (*Config, bool) {
	cfg := &Config{Remotes: map[string]*Remote{}}
	p := &configScanner{s: b}
	ok := p.object(func(name string) bool {
		switch name {
		case "current_remote":
			return p.str(&cfg.CurrentRemote)
		case "remotes":
			return p.object(func(name string) bool {
				r := &Remote{}
				cfg.Remotes[name] = r
				return p.remote(r)
			})
		}
		return false
	})
	p.space()
	return cfg, ok && p.i == len(b)
}

// configScanner reads JSON from s at i.
type configScanner struct {
	s []byte
	i int
}

func (p *configScanner) remote(r *Remote) bool {
	return p.object(func(name string) bool {
		switch name {
		case "user":
			return p.str(&r.User)
		case "address":
			return p.str(&r.Address)
		case "api_key":
			return p.str(&r.APIKey)
		case "current_dot":
			return p.str(&r.CurrentDot)
		case "data_dir":
			return p.str(&r.DataDir)
		case "ca_cert":
			return p.str(&r.CACert)
		case "tls":
			return p.boolean(&r.TLS)
		}
		return false // a bucket, or a name spelled otherwise
	})
}

func (p *configScanner) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next reads the byte c after any white space.
func (p *configScanner) next(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object, calling member for each name to read its
// value. A name twice is read as encoding/json reads it: the last value
// of a field wins, a second "remotes" adds to the first.
func (p *configScanner) object(member func(name string) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		var name string
		if !p.str(&name) || !p.next(':') || !member(name) {
			return false
		}
		if p.next('}') {
			return true
		}
		if !p.next(',') {
			return false
		}
	}
}

// str reads a string without escapes, control characters or invalid
// UTF-8 into v.
func (p *configScanner) str(v *string) bool {
	if !p.next('"') {
		return false
	}
	start, ascii := p.i, true
	for ; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case c == '"':
			s := p.s[start:p.i]
			if !ascii && !utf8.Valid(s) {
				return false
			}
			p.i++
			*v = string(s)
			return true
		case c == '\\' || c < 0x20:
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return false
}

func (p *configScanner) boolean(v *bool) bool {
	p.space()
	for _, lit := range [...]string{"false", "true"} {
		if len(p.s)-p.i >= len(lit) && string(p.s[p.i:p.i+len(lit)]) == lit {
			p.i += len(lit)
			*v = lit == "true"
			return true
		}
	}
	return false
}
