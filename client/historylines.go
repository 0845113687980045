package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/dotmesh-io/dotmesh/api"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// decodeLines reads an api.HistoryLines answer: the head line into
// h.page, then each commit line, handed to h.each or kept in h.page.
func (h historyAnswer) decodeLines(body io.Reader) error {
	var ik *infoKeys
	if h.keep != nil {
		ik = &infoKeys{keep: h.keep}
	}
	lr := lineReader{r: bufio.NewReaderSize(body, 64<<10)}
	line, err := lr.next()
	if err != nil {
		return fmt.Errorf("a history page's head: %w", err)
	}
	var head api.HistoryHead
	if err := jsonv2.Unmarshal(line, &head); err != nil {
		return fmt.Errorf("a history page's head: %w", err)
	}
	if head.Count < 0 {
		return fmt.Errorf("a history page's head counts %d commits", head.Count)
	}
	h.page.More, h.page.Refs, h.page.Current = head.More, head.Refs, head.Current
	if h.each == nil {
		h.page.Commits = make([]dotmesh.Commit, 0, min(head.Count, 1<<16)) // a count is only a claim
	}
	rd := recordDecoder{ik: ik}
	var c dotmesh.Commit
	n := 0
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if n == head.Count {
			return fmt.Errorf("a history page has more than the %d commits its head counts", head.Count)
		}
		if err := rd.decode(line, &c); err != nil {
			return fmt.Errorf("commit %d of a history page: %w", n+1, err)
		}
		n++
		if h.each == nil {
			h.page.Commits = append(h.page.Commits, c)
		} else if err := h.each(h.page, &c); err != nil {
			return err
		}
	}
	if n != head.Count {
		return fmt.Errorf("a history page ends after %d of the %d commits its head counts", n, head.Count)
	}
	return nil
}

// errCutLine is a last line without its newline: an answer cut short.
var errCutLine = errors.New("the answer ends inside a line")

// lineReader reads newline-ended lines, of any length.
type lineReader struct {
	r    *bufio.Reader
	long []byte // a line longer than r's buffer, gathered
}

// next returns the next line without its newline, valid until the next
// call; io.EOF after the last.
func (l *lineReader) next() ([]byte, error) {
	line, err := l.r.ReadSlice('\n')
	if err == nil {
		return line[:len(line)-1], nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = errCutLine
		}
		return nil, err
	}
	l.long = append(l.long[:0], line...)
	for {
		line, err = l.r.ReadSlice('\n')
		l.long = append(l.long, line...)
		switch {
		case err == nil:
			return bytes.TrimSuffix(l.long, []byte{'\n'}), nil
		case errors.Is(err, io.EOF):
			return nil, errCutLine
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		}
	}
}
