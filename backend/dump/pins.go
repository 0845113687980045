package dump

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dotmesh-io/dotmesh/backend/dump/cas"
	"github.com/dotmesh-io/dotmesh/dotmesh"
)

// Pins keep objects that no commit refers to yet alive for a commit that
// is being received:
//
//	pins/<dot>/<branch>/<commit>   the 32-byte hashes, concatenated
//
// Receive pins the objects of a stream as it publishes them (in steps,
// so a receive that breaks off, even by a crash, keeps what arrived), and
// HaveObjects pins what it tells a sender it need not send. Garbage
// collection treats pinned objects as live, under gcMu like everything
// else, so an object promised to a sender cannot be swept before the
// stream that relies on it arrives. A completed Receive removes its pin;
// an abandoned transfer's pin expires Options.PinTTL after it was last
// written (never while a Receive onto its branch runs), or goes at once
// when the node aborts the transfer (DiscardReceives), and its objects
// become ordinary garbage.
//
// Objects still in a batch's staging pack are not in the store's index
// at all, so collection never sees them; they are published or dropped by
// the Receive that staged them, which holds gcMu shared throughout.

func (b *Backend) pinsDir() string { return filepath.Join(b.dir, "pins") }

func (b *Backend) pinPath(c dotmesh.CommitRef) string {
	return filepath.Join(b.pinsDir(), string(c.Dot), c.Branch, string(c.ID))
}

const pinKind = "transfer pin"

// openPins returns the hashes of a sealed pin file; a torn or damaged
// piece ends it (the objects after it are kept only if a commit uses
// them).
func (b *Backend) openPins(path string, data []byte) []byte {
	var out []byte
	for len(data) >= 4 {
		n := int(binary.LittleEndian.Uint32(data))
		if n > len(data)-4 {
			break
		}
		hs, err := b.openFile(pinKind, data[4:4+n])
		if err != nil {
			b.log.Warn("ignoring the rest of a damaged transfer pin", "pin", path, "err", err)
			break
		}
		out = append(out, hs[:len(hs)-len(hs)%cas.HashSize]...)
		data = data[4+n:]
	}
	return out
}

// addPins appends hs to c's pin. The caller holds useStore. A torn append
// (crash) leaves a partial hash at the end, which readPins ignores.
func (b *Backend) addPins(c dotmesh.CommitRef, hs []cas.Hash) error {
	if len(hs) == 0 {
		return nil
	}
	p := b.pinPath(c)
	if err := os.MkdirAll(filepath.Dir(p), privateDir); err != nil {
		return fmt.Errorf("pin objects for %s: %w", c, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, privateFile)
	if err != nil {
		return fmt.Errorf("pin objects for %s: %w", c, err)
	}
	buf := make([]byte, 0, len(hs)*cas.HashSize)
	for _, h := range hs {
		buf = append(buf, h[:]...)
	}
	if b.keys != nil {
		// Sealed: each append is one length-prefixed sealed piece.
		sealed := b.sealFile(pinKind, buf)
		buf = binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(sealed)), uint32(len(sealed)))
		buf = append(buf, sealed...)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("pin objects for %s: %w", c, err)
	}
	return f.Close()
}

// dropPin removes c's pin; its objects are then live only if a commit
// refers to them.
func (b *Backend) dropPin(c dotmesh.CommitRef) {
	if err := os.Remove(b.pinPath(c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.log.Warn("cannot remove a transfer's object pin; it expires by itself", "commit", c, "err", err)
	}
}

// pinned adds every object of an unexpired pin to live; with prune it
// removes expired pins (the caller then holds gcMu exclusively).
func (b *Backend) pinned(live map[cas.Hash]struct{}, prune bool) (pins int, err error) {
	now := time.Now()
	err = filepath.WalkDir(b.pinsDir(), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if now.Sub(info.ModTime()) > b.pinTTL && !b.isReceiving(p) {
			if !prune {
				return nil
			}
			b.log.Info("an abandoned transfer's objects are no longer kept", "pin", p)
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if b.keys != nil {
			data = b.openPins(p, data)
		}
		for len(data) >= cas.HashSize {
			var h cas.Hash
			copy(h[:], data)
			live[h] = struct{}{}
			data = data[cas.HashSize:]
		}
		pins++
		return nil
	})
	if err != nil {
		return pins, fmt.Errorf("reading transfer pins: %w", err)
	}
	return pins, nil
}

// DiscardReceives implements dotmesh.ReceiveDiscarder: the pins of
// receives onto br go, so their objects are garbage unless a commit uses
// them.
func (b *Backend) DiscardReceives(ctx context.Context, br dotmesh.BranchRef) error {
	dir := filepath.Join(b.pinsDir(), string(br.Dot), br.Branch)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("discard the kept objects of receives onto %s: %w", br, err)
	}
	_ = os.Remove(filepath.Dir(dir)) // the dot's directory, when empty
	return nil
}

// startReceive marks a receive onto br as running until the returned
// function is called.
func (b *Backend) startReceive(br dotmesh.BranchRef) func() {
	b.recvMu.Lock()
	defer b.recvMu.Unlock()
	if b.receiving == nil {
		b.receiving = map[dotmesh.BranchRef]int{}
	}
	b.receiving[br]++
	return func() {
		b.recvMu.Lock()
		defer b.recvMu.Unlock()
		if b.receiving[br]--; b.receiving[br] <= 0 {
			delete(b.receiving, br)
		}
	}
}

// isReceiving reports whether the pin at path p belongs to a branch that
// a receive is writing to now.
func (b *Backend) isReceiving(p string) bool {
	rel, err := filepath.Rel(b.pinsDir(), filepath.Dir(p))
	if err != nil {
		return false
	}
	dot, branch, ok := strings.Cut(rel, string(filepath.Separator))
	if !ok {
		return false
	}
	b.recvMu.Lock()
	defer b.recvMu.Unlock()
	return b.receiving[dotmesh.BranchRef{Dot: dotmesh.DotID(dot), Branch: branch}] > 0
}
