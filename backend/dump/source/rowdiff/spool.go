package rowdiff

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// spool keeps a sequence of rows in order: in memory while the diff's
// memory budget lasts, then in a temporary file, so that tables compared
// out of order and large change sets cost disk, not memory.
type spool struct {
	b    *budget
	mem  []byte // uvarint length + row, repeated
	f    *os.File
	w    *bufio.Writer
	n    int64
	size int64
}

// budget is the memory all spools of one diff share, and where they
// spill.
type budget struct {
	left   int64
	dir    string
	spools []*spool
}

func (b *budget) newSpool() *spool {
	s := &spool{b: b}
	b.spools = append(b.spools, s)
	return s
}

// close removes every spool's file.
func (b *budget) close() {
	for _, s := range b.spools {
		s.close()
	}
	b.spools = nil
}

func (s *spool) add(row []byte) error {
	s.n++
	s.size += int64(len(row))
	if s.f == nil {
		need := int64(len(row) + binary.MaxVarintLen64)
		if s.b.left >= need {
			s.b.left -= need
			s.mem = binary.AppendUvarint(s.mem, uint64(len(row)))
			s.mem = append(s.mem, row...)
			return nil
		}
		f, err := os.CreateTemp(s.b.dir, ".dm-rowdiff-*")
		if err != nil {
			return fmt.Errorf("spilling rows to disk: %w", err)
		}
		s.f, s.w = f, bufio.NewWriterSize(f, 256<<10)
		if _, err := s.w.Write(s.mem); err != nil {
			return fmt.Errorf("spilling rows to disk: %w", err)
		}
		s.b.left += int64(len(s.mem))
		s.mem = nil
	}
	var l [binary.MaxVarintLen64]byte
	s.w.Write(l[:binary.PutUvarint(l[:], uint64(len(row)))])
	if _, err := s.w.Write(row); err != nil {
		return fmt.Errorf("spilling rows to disk: %w", err)
	}
	return nil
}

// each calls fn with every row in order; row is valid during the call.
func (s *spool) each(fn func(row []byte) error) error {
	sr, err := s.reader()
	if err != nil {
		return err
	}
	for {
		row, err := sr.nextRow()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

// reader returns an iterator over the rows (no more may be added).
func (s *spool) reader() (*spoolRows, error) {
	sr := &spoolRows{s: s, mem: s.mem}
	if s.f != nil {
		if err := s.w.Flush(); err != nil {
			return nil, err
		}
		if _, err := s.f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		sr.r = bufio.NewReaderSize(s.f, 256<<10)
	}
	return sr, nil
}

type spoolRows struct {
	s   *spool
	r   *bufio.Reader
	mem []byte
	i   int64
	buf []byte
}

func (sr *spoolRows) nextRow() ([]byte, error) {
	if sr.i == sr.s.n {
		return nil, io.EOF
	}
	sr.i++
	if sr.r == nil {
		l, k := binary.Uvarint(sr.mem)
		row := sr.mem[k : k+int(l)]
		sr.mem = sr.mem[k+int(l):]
		return row, nil
	}
	l, err := binary.ReadUvarint(sr.r)
	if err != nil {
		return nil, fmt.Errorf("reading spilled rows: %w", err)
	}
	if uint64(cap(sr.buf)) < l {
		sr.buf = make([]byte, l)
	}
	row := sr.buf[:l]
	if _, err := io.ReadFull(sr.r, row); err != nil {
		return nil, fmt.Errorf("reading spilled rows: %w", err)
	}
	return row, nil
}

func (s *spool) close() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
		s.f = nil
	}
	if s.mem != nil {
		s.b.left += int64(len(s.mem))
		s.mem = nil
	}
}
