package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/dotmesh-io/dotmesh/api"
)

// keepAlive runs h with a writer that sends "102 Processing" every
// api.TransferKeepAlive until h starts its answer: a peer's idle timeout
// (client.WithIdleTimeout) then tells a node that works long before it
// answers (a Finish that restores a large tree, a neutral stream that
// restores a commit before its first byte) from a stopped one.
func (s *server) keepAlive(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ka := &keepAliveWriter{ResponseWriter: w, quit: make(chan struct{}), done: make(chan struct{})}
		go ka.run()
		defer ka.stop() // also when h panics (a cut stream)
		h(ka, r)
	}
}

// keepAliveWriter stops its keep-alives before anything else touches
// the ResponseWriter, which is not safe for concurrent use.
type keepAliveWriter struct {
	http.ResponseWriter
	once sync.Once
	quit chan struct{}
	done chan struct{}
}

func (k *keepAliveWriter) run() {
	defer close(k.done)
	t := time.NewTicker(api.TransferKeepAlive)
	defer t.Stop()
	for {
		select {
		case <-k.quit:
			return
		case <-t.C:
			k.ResponseWriter.WriteHeader(http.StatusProcessing)
		}
	}
}

// stop ends the keep-alives and waits until none is being written.
func (k *keepAliveWriter) stop() {
	k.once.Do(func() { close(k.quit) })
	<-k.done
}

func (k *keepAliveWriter) Header() http.Header {
	k.stop()
	return k.ResponseWriter.Header()
}

func (k *keepAliveWriter) WriteHeader(status int) {
	k.stop()
	k.ResponseWriter.WriteHeader(status)
}

func (k *keepAliveWriter) Write(b []byte) (int, error) {
	k.stop()
	return k.ResponseWriter.Write(b)
}

func (k *keepAliveWriter) Unwrap() http.ResponseWriter {
	k.stop()
	return k.ResponseWriter
}
