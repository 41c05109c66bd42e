package webhook

import (
	"errors"
	"io"
	"sync"
)

// DefaultMaxInflightBytes bounds the bytes of bodies being read before
// their signature is checked, across every source.
const DefaultMaxInflightBytes = 64 << 20

// Inflight counts the bytes of request bodies held by the intake before
// and while they are verified, across sources: unauthenticated senders
// cannot make the process hold more than its limit. A request past it is
// answered 503 with Retry-After, its body left unread.
type Inflight struct {
	mu    sync.Mutex
	limit int64
	held  int64
	// free keeps the buffers of refused bodies for the next requests, up
	// to limit bytes in all, so a flood of unsigned bodies reuses memory
	// instead of leaving garbage for the collector.
	free     [][]byte
	freeSize int64
}

// Small bodies (most deliveries: a few KiB) are read into buffers of a
// power-of-two size from minSmall to maxSmall, pooled by size, so the intake
// allocates no body buffer in the steady state.
const (
	minSmall = 4 << 10
	maxSmall = 32 << 10
)

var smallBufs [4]sync.Pool // 4, 8, 16, 32 KiB; each holds *[]byte

// smallClass is the index in smallBufs of the smallest buffer size that
// holds n bytes; -1 above maxSmall.
func smallClass(n int64) int {
	for c, size := 0, int64(minSmall); size <= maxSmall; c, size = c+1, size*2 {
		if n <= size {
			return c
		}
	}
	return -1
}

// recycle keeps buf (of a request done with it: refused, or stored)
// for reuse; buf must be referenced nowhere else.
func (f *Inflight) recycle(buf []byte) {
	if c := smallClass(int64(cap(buf))); c >= 0 {
		if cap(buf) == minSmall<<c {
			buf = buf[:0]
			smallBufs[c].Put(&buf)
		}
		return
	}
	if cap(buf) < 64<<10 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.freeSize+int64(cap(buf)) > f.limit {
		return
	}
	f.free = append(f.free, buf[:0])
	f.freeSize += int64(cap(buf))
}

// alloc returns a buffer of capacity at least n, from the pools of small
// buffers or from the free list when one fits (the smallest that does).
func (f *Inflight) alloc(n int64) []byte {
	if c := smallClass(n); c >= 0 {
		if p, _ := smallBufs[c].Get().(*[]byte); p != nil {
			return (*p)[:0]
		}
		return make([]byte, 0, minSmall<<c)
	}
	f.mu.Lock()
	best := -1
	for i, b := range f.free {
		if int64(cap(b)) >= n && int64(cap(b)) <= 2*n && (best < 0 || cap(b) < cap(f.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := f.free[best]
		f.free[best] = f.free[len(f.free)-1]
		f.free = f.free[:len(f.free)-1]
		f.freeSize -= int64(cap(b))
		f.mu.Unlock()
		return b[:0]
	}
	f.mu.Unlock()
	return make([]byte, 0, n)
}

// NewInflight returns a counter of at most limit bytes (<= 0: the default).
func NewInflight(limit int64) *Inflight {
	if limit <= 0 {
		limit = DefaultMaxInflightBytes
	}
	return &Inflight{limit: limit}
}

// errBusy says the intake holds its limit of unverified bytes.
var errBusy = errors.New("too many bytes in flight")

// take reserves n bytes; false when that would pass the limit.
func (f *Inflight) take(n int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held+n > f.limit {
		return false
	}
	f.held += n
	return true
}

func (f *Inflight) give(n int64) {
	f.mu.Lock()
	f.held -= n
	f.mu.Unlock()
}

// Held is the number of bytes reserved now.
func (f *Inflight) Held() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

// readBody reads at most max bytes of r, reserving them from f as they
// arrive (a slow sender holds only what it sent), into a buffer sized by
// the announced length when there is one. It returns the body and the
// bytes reserved, which the caller gives back when done with the body.
// Reading stops with errBusy when the reservation fails.
func (f *Inflight) readBody(r io.Reader, contentLength, max int64) ([]byte, int64, error) {
	size := int64(32 << 10)
	if contentLength > 0 && contentLength <= max {
		size = contentLength + 1 // +1: the read that sees EOF needs no growth
	}
	reserved := min(size, max+1)
	if c := smallClass(reserved); c >= 0 {
		reserved = minSmall << c // a pooled buffer: count all it holds
	}
	if !f.take(reserved) {
		return nil, 0, errBusy
	}
	buf := f.alloc(reserved)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return buf, reserved, &tooLarge{}
			}
			grow := min(int64(cap(buf)), max+1-int64(cap(buf)))
			if grow <= 0 {
				return buf, reserved, &tooLarge{}
			}
			if !f.take(grow) {
				return buf, reserved, errBusy
			}
			reserved += grow
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return buf, reserved, &tooLarge{}
		}
		if err == io.EOF {
			return buf, reserved, nil
		}
		if err != nil {
			return buf, reserved, err
		}
	}
}

// tooLarge is a body over the size limit.
type tooLarge struct{}

func (*tooLarge) Error() string { return "body too large" }
