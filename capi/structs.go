package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"math"
	"time"
	"unsafe"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// Versioned structs: every option and result struct starts with uint32
// size, the struct's size as the caller compiled it. readSized copies at
// most that many bytes into a zeroed struct of this library's layout (so an
// older caller's missing fields are zero, their default), and refuses a
// newer caller's extra bytes unless they are zero. writeSized writes at most
// the caller's size back.

// readSized returns *p as this library lays it out; the zero value for NULL.
func readSized[T any](p *T, name string) (T, error) {
	var v T
	if p == nil {
		return v, nil
	}
	size := int(*(*uint32)(unsafe.Pointer(p)))
	ours := int(unsafe.Sizeof(v))
	if size < 8 {
		return v, argError("%s.size %d: set it to sizeof(%s) (POH_INIT)", name, size, name)
	}
	src := unsafe.Slice((*byte)(unsafe.Pointer(p)), size)
	for i := ours; i < size; i++ {
		if src[i] != 0 {
			return v, argError("%s: byte %d is set, but this library (version %s) knows only the first %d "+
				"bytes of it: a newer header's field", name, i, versionString(), ours)
		}
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&v)), ours), src[:min(size, ours)])
	return v, nil
}

// writeSized stores v into *p, at most p.size bytes of it (p must not be NULL).
func writeSized[T any](p *T, v T, name string) error {
	size := int(*(*uint32)(unsafe.Pointer(p)))
	ours := int(unsafe.Sizeof(v))
	if size < 8 {
		return argError("%s.size %d: set it to sizeof(%s) (POH_INIT)", name, size, name)
	}
	*(*uint32)(unsafe.Pointer(&v)) = uint32(min(size, ours))
	copy(unsafe.Slice((*byte)(unsafe.Pointer(p)), min(size, ours)), unsafe.Slice((*byte)(unsafe.Pointer(&v)), ours))
	return nil
}

// checkFlags refuses flag bits this library does not know.
func checkFlags(name string, flags C.uint32_t, known C.uint32_t) error {
	if extra := flags &^ known; extra != 0 {
		return argError("%s.flags: unknown bits %#x", name, uint32(extra))
	}
	return nil
}

// nowOr resolves the POH_NOW sentinel to the wall clock (or the aggregator's).
func nowOr(now C.int64_t, clock func() int64) int64 {
	if now == math.MinInt64 {
		return clock()
	}
	return int64(now)
}

func wallClock() int64 { return time.Now().Unix() }

// maxRows bounds a batch: far beyond any real one, and small enough that no
// length computation overflows.
const maxRows = 1 << 40

// cSlice views n elements of C memory at p as a Go slice (nil for p == NULL).
func cSlice[T any](p *T, n int64) []T {
	if p == nil {
		return nil
	}
	return unsafe.Slice(p, n)
}

// cString views C memory as a string without copying; core copies what it keeps.
func cString(p *C.char, n C.int64_t, name string) (string, error) {
	switch {
	case n < 0:
		return "", argError("%s length %d is negative", name, int64(n))
	case n == 0:
		return "", nil
	case p == nil:
		return "", argError("%s is NULL with length %d", name, int64(n))
	}
	return unsafe.String((*byte)(unsafe.Pointer(p)), int(n)), nil
}

func window(w C.poh_window) *core.Window {
	return &core.Window{Start: int64(w.t0), End: int64(w.t1)}
}

// columns checks the C struct's pointers and lengths and views it as
// core.Columns (no copy; the packed rows layout is unpacked, a few ns a
// row). Value checks are core's.
func columns(p *C.poh_columns) (*core.Columns, error) {
	if p == nil {
		return nil, argError("columns pointer is NULL")
	}
	c, err := readSized(p, "poh_columns")
	if err != nil {
		return nil, err
	}
	if err := checkFlags("poh_columns", c.flags, 0); err != nil {
		return nil, err
	}
	n := int64(c.n)
	switch {
	case n < 0 || n > maxRows:
		return nil, argError("row count %d is out of range [0, %d]", n, int64(maxRows))
	case c.rows != nil && (c.start != nil || c.end != nil || c.has_end != nil || c.weight != nil || c.weight_u256 != nil):
		return nil, argError("rows and start/end/has_end/weight are both set: pass one layout")
	case c.rows != nil:
		return packed(cSlice(c.rows, n)), nil
	case n > 0 && c.start == nil:
		return nil, argError("start is NULL with %d rows", n)
	case c.has_end != nil && c.end == nil:
		return nil, argError("has_end is set but end is NULL")
	}
	cols := &core.Columns{
		Start:  cSlice((*int64)(unsafe.Pointer(c.start)), n),
		End:    cSlice((*int64)(unsafe.Pointer(c.end)), n),
		HasEnd: cSlice((*uint8)(unsafe.Pointer(c.has_end)), n),
		Weight: cSlice((*float64)(unsafe.Pointer(c.weight)), n),
	}
	if cols.Start == nil {
		cols.Start = []int64{}
	}
	if c.weight_u256 != nil {
		cols.Wei = cSlice((*byte)(unsafe.Pointer(c.weight_u256)), 32*n)
	}
	if cols.Token, err = idColumn("token", c.token_data, c.token_data_len, c.token_offsets, n); err != nil {
		return nil, err
	}
	if cols.Holder, err = idColumn("holder", c.holder_data, c.holder_data_len, c.holder_offsets, n); err != nil {
		return nil, err
	}
	return cols, nil
}

// packed unpacks poh_events (end < 0 = open) into columns.
func packed(evs []C.poh_event) *core.Columns {
	cols := &core.Columns{
		Start:  make([]int64, len(evs)),
		End:    make([]int64, len(evs)),
		HasEnd: make([]uint8, len(evs)),
		Weight: make([]float64, len(evs)),
	}
	for i := range evs {
		cols.Start[i] = int64(evs[i].start)
		cols.End[i] = int64(evs[i].end)
		if evs[i].end >= 0 {
			cols.HasEnd[i] = 1
		}
		cols.Weight[i] = float64(evs[i].weight)
	}
	return cols
}

func idColumn(name string, data *C.char, dataLen C.int64_t, offsets *C.int64_t, n int64) (core.IDColumn, error) {
	if offsets == nil {
		return core.IDColumn{}, nil
	}
	if dataLen < 0 {
		return core.IDColumn{}, argError("%s_data_len %d is negative", name, int64(dataLen))
	}
	if dataLen > 0 && data == nil {
		return core.IDColumn{}, argError("%s_data is NULL with length %d", name, int64(dataLen))
	}
	d := cSlice((*byte)(unsafe.Pointer(data)), int64(dataLen))
	if d == nil {
		d = []byte{}
	}
	return core.IDColumn{Data: d, Offsets: cSlice((*int64)(unsafe.Pointer(offsets)), n+1)}, nil
}
