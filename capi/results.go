package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"unsafe"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// Result handles: what a call produced, kept until poh_free, copied out into
// caller buffers sized by poh_result_size.

// result is every kind of result handle.
type result interface {
	size() (rows, bytes int64)
}

// statsResult is a query's rows, or poh_score_by_holder's (group; rows is
// nil then).
type statsResult struct {
	group *core.Grouped
	bytes int64 // total holder-id bytes
}

func (r *statsResult) size() (int64, int64) { return int64(r.group.Len()), r.bytes }

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
