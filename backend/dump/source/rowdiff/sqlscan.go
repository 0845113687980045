package rowdiff

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// maxStatement bounds one SQL statement (an INSERT holds one row): a
// dump with a longer one is refused rather than buffered whole.
var maxStatement = 256 << 20

// sqlReader cuts a SQL script into statements, streaming: quotes,
// identifiers, dollar quotes (PostgreSQL), backslash escapes and
// executable comments (MariaDB/MySQL) are understood, comments dropped.
type sqlReader struct {
	r      *bufio.Reader
	engine string
	line   int64  // lines read
	pend   []byte // the unread rest of the current line
	long   []byte // a line longer than the reader's buffer
	stmt   []byte
	start  int64 // the line the statement started on

	state   byte   // 0 code, '\'', '"', '`', '$' dollar quote, '*' block comment
	tag     []byte // the dollar quote's tag
	inExec  bool   // inside a MySQL /*!NNNNN ... */ comment, which is code
	escaped bool   // the previous byte was a backslash in a MySQL string
}

func newSQLReader(r io.Reader, engine string) *sqlReader {
	return &sqlReader{r: bufio.NewReaderSize(r, 1<<20), engine: engine}
}

// readLine returns the next line with its newline (the last may lack
// one), valid until the next call; io.EOF at the end.
func (s *sqlReader) readLine() ([]byte, error) {
	l, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		s.long = append(s.long[:0], l...)
		for err == bufio.ErrBufferFull {
			if len(s.long) > maxStatement {
				return nil, fmt.Errorf("%w: line %d is longer than %d bytes", dotmesh.ErrCorrupt, s.line+1, maxStatement)
			}
			l, err = s.r.ReadSlice('\n')
			s.long = append(s.long, l...)
		}
		l = s.long
	}
	if err == io.EOF && len(l) > 0 {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	s.line++
	return l, nil
}

// statement returns the next statement, comments removed, without its
// semicolon (valid until the next call), and the line it starts on;
// io.EOF at the end. Text after the last semicolon other than blanks
// and comments means the dump was cut.
func (s *sqlReader) statement() ([]byte, int64, error) {
	s.stmt = s.stmt[:0]
	s.start = 0
	for {
		if len(s.pend) == 0 {
			l, err := s.readLine()
			if err == io.EOF {
				if len(bytes.TrimSpace(s.stmt)) > 0 || s.state != 0 {
					return nil, s.start, fmt.Errorf("%w: the dump ends inside the statement of line %d: truncated", dotmesh.ErrCorrupt, s.start)
				}
				return nil, 0, io.EOF
			}
			if err != nil {
				return nil, 0, err
			}
			s.pend = l
		}
		if s.start == 0 && len(bytes.TrimSpace(s.pend)) > 0 {
			s.start = s.line
		}
		if s.scan() {
			return s.stmt, s.start, nil
		}
		if len(s.stmt) > maxStatement {
			return nil, s.start, fmt.Errorf("%w: the statement of line %d is longer than %d bytes", dotmesh.ErrCorrupt, s.start, maxStatement)
		}
	}
}

// scan moves pend into stmt up to the end of a statement (true).
func (s *sqlReader) scan() bool {
	p := s.pend
	mysql := s.engine == MySQL
	i := 0
	emit := func(j int) { s.stmt = append(s.stmt, p[i:j]...) }
	for j := 0; j < len(p); j++ {
		c := p[j]
		switch s.state {
		case 0:
			switch {
			case c == ';':
				emit(j)
				s.pend = p[j+1:]
				return true
			case c == '-' && j+1 < len(p) && p[j+1] == '-':
				emit(j)
				s.stmt = append(s.stmt, '\n')
				s.pend = nil
				return false
			case c == '/' && j+1 < len(p) && p[j+1] == '*':
				emit(j)
				s.stmt = append(s.stmt, ' ')
				if mysql && j+2 < len(p) && p[j+2] == '!' {
					k := j + 3
					for k < len(p) && p[k] >= '0' && p[k] <= '9' {
						k++
					}
					s.inExec = true
					i, j = k, k-1
				} else {
					s.state = '*'
					j++
				}
			case c == '*' && s.inExec && j+1 < len(p) && p[j+1] == '/':
				emit(j)
				s.inExec = false
				j++
				i = j + 1
			case c == '\'' || c == '"' || (c == '`' && mysql):
				s.state = c
			case c == '$' && s.engine == PostgreSQL:
				if k := dollarTag(p[j:]); k > 0 {
					s.tag = append(s.tag[:0], p[j:j+k]...)
					s.state = '$'
					j += k - 1
				}
			}
		case '*':
			if c == '*' && j+1 < len(p) && p[j+1] == '/' {
				s.state = 0
				j++
				i = j + 1
			}
		case '$':
			if c == '$' && bytes.HasPrefix(p[j:], s.tag) {
				j += len(s.tag) - 1
				s.state = 0
			}
		case '\'':
			switch {
			case s.escaped:
				s.escaped = false
			case c == '\\' && mysql:
				s.escaped = true
			case c == '\'':
				s.state = 0 // '' reopens at once
			}
		default: // '"', '`'
			if c == s.state {
				s.state = 0
			}
		}
	}
	if s.state != '*' {
		emit(len(p))
	}
	s.pend = nil
	return false
}

// dollarTag returns the length of the dollar-quote tag at the start of p
// ($$ or $name$), or 0.
func dollarTag(p []byte) int {
	for k := 1; k < len(p); k++ {
		c := p[k]
		switch {
		case c == '$':
			return k + 1
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && k > 1:
		default:
			return 0
		}
	}
	return 0
}
