package main

/*
#include <stdlib.h>
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// Result handles: what a call produced, kept until poh_free, copied out into
// caller buffers sized by poh_result_size.

// result is every kind of result handle.
type result interface {
	size() (rows, bytes int64)
}

// statsResult is a query's rows, or poh_score_by_holder's, as columns.
type statsResult struct {
	group *core.Grouped
	mem   *cAlloc // where group's columns are, if not on the Go heap
}

func (r *statsResult) size() (int64, int64) {
	return int64(r.group.Len()), int64(len(r.group.Holders.Data))
}

// read runs f on the columns unless the result is being or has been freed
// (a caller that frees a result while reading it gets an error, never a
// read of freed memory).
func (r *statsResult) read(f func(g *core.Grouped) error) error {
	if r.mem == nil {
		return f(r.group)
	}
	r.mem.mu.RLock()
	defer r.mem.mu.RUnlock()
	if r.mem.freed {
		return errBadHandle
	}
	return f(r.group)
}

// cAlloc is a core.ColumnAlloc of C memory (malloc), freed with the result
// (poh_free). A snapshot's columns only pass through Go on their way to the
// caller's buffers; keeping them off the Go heap keeps a snapshot of a
// million holders (a hundred MB of columns) from bringing on a collection,
// whose cost is the aggregator's whole state (about a second of CPU for a
// million holders with several tokens each).
type cAlloc struct {
	mu     sync.RWMutex
	blocks []unsafe.Pointer
	freed  bool
}

func (c *cAlloc) Bytes(n int) []byte {
	p := C.malloc(C.size_t(max(n, 1)))
	if p == nil {
		panic(fmt.Sprintf("out of memory: malloc of %d bytes for a result's columns", n))
	}
	c.blocks = append(c.blocks, p)
	return unsafe.Slice((*byte)(p), n)
}

func (c *cAlloc) Float64s(n int) []float64 {
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(c.Bytes(8*n)))), n)
}

func (c *cAlloc) Int64s(n int) []int64 {
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(c.Bytes(8*n)))), n)
}

// free releases every block; the columns must not be read after it.
func (c *cAlloc) free() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.blocks {
		C.free(p)
	}
	c.blocks, c.freed = nil, true
}

// errorsResult is the rejected rows of a partial batch, messages rendered.
type errorsResult struct {
	errs  []*core.ValidationError
	msgs  []string
	bytes int64
}

func newErrorsResult(errs []*core.ValidationError) *errorsResult {
	r := &errorsResult{errs: errs, msgs: make([]string, len(errs))}
	for i, ve := range errs {
		r.msgs[i] = ve.Error()
		r.bytes += int64(len(r.msgs[i]))
	}
	return r
}

func (r *errorsResult) size() (int64, int64) { return int64(len(r.errs)), r.bytes }

// textResult is a metrics exposition text.
type textResult struct{ text string }

func (r *textResult) size() (int64, int64) { return 0, int64(len(r.text)) }

// putExact writes x big-endian into a 48-byte C array.
func putExact(dst *[48]C.uint8_t, x *core.Int) {
	b := x.Bytes()
	for i := range b {
		dst[i] = C.uint8_t(b[i])
	}
}

func statRow(st *core.HolderStat, idOffset int) C.poh_stat {
	return C.poh_stat{
		score:         C.double(st.Score),
		total_seconds: C.int64_t(st.TotalSeconds),
		events:        C.int64_t(st.Events),
		open_holds:    C.int64_t(st.OpenHolds),
		tokens:        C.int64_t(st.Tokens),
		updated_at:    C.int64_t(st.UpdatedAt),
		id_offset:     C.int64_t(idOffset),
		id_len:        C.int64_t(len(st.HolderID)),
	}
}

// copyRows checks the caller's row and byte buffers against r's size, then
// lets fill write into them (nothing is written when they are too small).
func copyRows[R any](r result, rows *R, rowsCap C.int64_t, buf *C.char, bufCap C.int64_t, bufName string,
	fill func(out []R, buf []byte)) error {
	n, nb := r.size()
	switch {
	case n > 0 && rows == nil:
		return argError("rows is NULL")
	case nb > 0 && buf == nil:
		return argError("%s is NULL", bufName)
	case int64(rowsCap) < n || int64(bufCap) < nb:
		return tooSmall("result needs %s rows and %s %s bytes", itoa(n), itoa(nb), bufName)
	}
	fill(cSlice(rows, n), cSlice((*byte)(unsafe.Pointer(buf)), nb))
	return nil
}
