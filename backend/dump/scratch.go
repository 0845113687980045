package dump

import "os"

// scratch is a source.Scratch: a private directory, made on first use in
// a branch directory under tmpPrefix so that the sweep at Open removes
// what a crash leaves, and removed by remove.
type scratch struct {
	parent string
	dir    string
}

// ScratchDir implements source.Scratch; "" when the directory cannot be
// made (the driver then uses the system's).
func (s *scratch) ScratchDir() string {
	if s.dir == "" {
		if d, err := os.MkdirTemp(s.parent, tmpPrefix+"scratch-"); err == nil {
			s.dir = d
		}
	}
	return s.dir
}

func (s *scratch) remove() {
	if s.dir != "" {
		removeAll(s.dir)
		s.dir = ""
	}
}
