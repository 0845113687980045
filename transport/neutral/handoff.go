package neutral

import (
	"errors"
	"io"
	"sync"
)

// Pipe is io.Pipe for a stream whose both ends run in this process (a
// clone from a bucket: the fetch writes, the receiving node reads): a
// Scan or Read of UncheckedReader(r) writes the large pieces of file
// content the sender handed to w straight from the sender's buffer into
// the file (WriteNTo), where io.Pipe copied every byte into the reader's
// buffer first. A Writer on UncheckedWriter(w) hands such pieces over
// as they are instead of copying them into its own buffer. Both copies
// were a memmove of every byte of a clone.
func Pipe() (*PipeReader, *PipeWriter) {
	p := &pipe{wrCh: make(chan []byte), rdCh: make(chan int), done: make(chan struct{})}
	return &PipeReader{p}, &PipeWriter{p}
}

// PipeReader is the read end of Pipe.
type PipeReader struct{ p *pipe }

// PipeWriter is the write end of Pipe.
type PipeWriter struct{ p *pipe }

// HandoffReader is a stream that writes its next n bytes to w from the
// buffers its writer handed over, without a copy between: a Pipe's
// reader, or a wrapper of one (counting, say) that passes WriteNTo on
// through the function WriteNTo.
type HandoffReader interface {
	io.Reader
	WriteNTo(w io.Writer, n int64) (int64, error)
}

// ErrNoHandoff is WriteNTo's answer, having read nothing, for a reader
// whose writer hands nothing over: the caller reads instead.
var ErrNoHandoff = errors.New("neutral: the stream hands no buffers over")

// WriteNTo writes r's next n bytes to w from the buffers r's writer
// handed over, when r is a HandoffReader; otherwise it returns
// ErrNoHandoff and reads nothing. A wrapper of another reader calls it
// in its own WriteNTo, so that the hand-over passes through it.
func WriteNTo(r io.Reader, w io.Writer, n int64) (int64, error) {
	h, ok := r.(HandoffReader)
	if !ok {
		return 0, ErrNoHandoff
	}
	return h.WriteNTo(w, n)
}

// pipe is io.Pipe's synchronous hand-over (a Write blocks until readers
// took all its bytes), with WriteNTo beside Read.
type pipe struct {
	wrMu sync.Mutex // serializes Writes
	wrCh chan []byte
	rdCh chan int

	once sync.Once
	done chan struct{}
	mu   sync.Mutex
	rerr error // set by CloseWithError on the read end
	werr error // set by CloseWithError on the write end
}

func (r *PipeReader) Read(b []byte) (int, error) {
	p := r.p
	select {
	case <-p.done:
		return 0, p.readErr()
	default:
	}
	select {
	case bw := <-p.wrCh:
		n := copy(b, bw)
		p.rdCh <- n
		return n, nil
	case <-p.done:
		return 0, p.readErr()
	}
}

// WriteNTo writes the stream's next n bytes to w straight from the
// writer's buffers. Fewer than n bytes come with the error that ended
// the stream (io.EOF after a Close) or w's.
func (r *PipeReader) WriteNTo(w io.Writer, n int64) (int64, error) {
	p := r.p
	var total int64
	for total < n {
		select {
		case <-p.done:
			return total, p.readErr()
		default:
		}
		select {
		case bw := <-p.wrCh:
			k := int(min(int64(len(bw)), n-total))
			m, err := w.Write(bw[:k])
			p.rdCh <- m // the writer goes on with the rest of its piece
			total += int64(m)
			if err == nil && m < k {
				err = io.ErrShortWrite
			}
			if err != nil {
				return total, err
			}
		case <-p.done:
			return total, p.readErr()
		}
	}
	return total, nil
}

// Close closes the reader: writes fail with io.ErrClosedPipe.
func (r *PipeReader) Close() error { return r.CloseWithError(nil) }

// CloseWithError closes the reader: writes fail with err (or
// io.ErrClosedPipe).
func (r *PipeReader) CloseWithError(err error) error {
	if err == nil {
		err = io.ErrClosedPipe
	}
	r.p.closeWith(&r.p.rerr, err)
	return nil
}

func (w *PipeWriter) Write(b []byte) (int, error) {
	p := w.p
	select {
	case <-p.done:
		return 0, p.writeErr()
	default:
		p.wrMu.Lock()
		defer p.wrMu.Unlock()
	}
	n := 0
	for once := true; once || len(b) > 0; once = false {
		select {
		case p.wrCh <- b:
			nw := <-p.rdCh
			b = b[nw:]
			n += nw
		case <-p.done:
			return n, p.writeErr()
		}
	}
	return n, nil
}

// Close closes the writer: reads get io.EOF once the written bytes are
// read.
func (w *PipeWriter) Close() error { return w.CloseWithError(nil) }

// CloseWithError closes the writer: reads get err (io.EOF for nil).
func (w *PipeWriter) CloseWithError(err error) error {
	if err == nil {
		err = io.EOF
	}
	w.p.closeWith(&w.p.werr, err)
	return nil
}

// closeWith records err as the end's error, the first one only, and
// ends the pipe.
func (p *pipe) closeWith(slot *error, err error) {
	p.mu.Lock()
	if *slot == nil {
		*slot = err
	}
	p.mu.Unlock()
	p.once.Do(func() { close(p.done) })
}

// readErr is what a read of a closed pipe returns.
func (p *pipe) readErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr != nil {
		return io.ErrClosedPipe
	}
	return p.werr
}

// writeErr is what a write to a closed pipe returns.
func (p *pipe) writeErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return io.ErrClosedPipe
	}
	if p.rerr != nil {
		return p.rerr
	}
	return io.ErrClosedPipe
}
