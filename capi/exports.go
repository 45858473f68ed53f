package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

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

// columns checks the C struct's pointers and lengths and views it as
// core.Columns (no copy). Value checks are core's.
func columns(c *C.poh_columns) (*core.Columns, error) {
	if c == nil {
		return nil, argError("columns pointer is NULL")
	}
	n := int64(c.n)
	if n < 0 || n > maxRows {
		return nil, argError("row count %d is out of range [0, %d]", n, int64(maxRows))
	}
	if n > 0 && c.start == nil {
		return nil, argError("start is NULL with %d rows", n)
	}
	if c.has_end != nil && c.end == nil {
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
	var err error
	if cols.Token, err = idColumn("token", c.token_data, c.token_data_len, c.token_offsets, n); err != nil {
		return nil, err
	}
	if cols.Holder, err = idColumn("holder", c.holder_data, c.holder_data_len, c.holder_offsets, n); err != nil {
		return nil, err
	}
	return cols, nil
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

//export poh_version
func poh_version(buf *C.char, bufCap C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	if buf == nil || int64(bufCap) <= int64(len(version)) {
		return fail(e, &statusError{statusBufferTooSmall, "version needs a buffer of 16 bytes"})
	}
	putString(unsafe.Slice(buf, int(bufCap)), version)
	return statusOK
}

//export poh_live_handles
func poh_live_handles() C.int64_t {
	return C.int64_t(liveHandles.Load())
}

//export poh_score_columns
func poh_score_columns(c *C.poh_columns, now C.int64_t, score *C.double, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return scoreInto(score, "score", func() (*core.Columns, error) { return columns(c) },
		func(cols *core.Columns) (float64, error) { return core.ScoreColumns(cols, nowOr(now, wallClock)) }, e)
}

//export poh_score_events
func poh_score_events(events *C.poh_event, n C.int64_t, now C.int64_t, score *C.double, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return scoreInto(score, "score", func() (*core.Columns, error) { return packedColumns(events, n) },
		func(cols *core.Columns) (float64, error) { return core.ScoreColumns(cols, nowOr(now, wallClock)) }, e)
}

// scoreInto is the body every scoring export shares: check the output
// pointer, get the columns, score them, write the result.
func scoreInto(out *C.double, name string, get func() (*core.Columns, error),
	score func(*core.Columns) (float64, error), e *C.poh_error) C.int {
	if out == nil {
		return fail(e, argError("%s pointer is NULL", name))
	}
	cols, err := get()
	if err != nil {
		return fail(e, err)
	}
	v, err := score(cols)
	if err != nil {
		return fail(e, err)
	}
	*out = C.double(v)
	return statusOK
}

//export poh_aggregator_new
func poh_aggregator_new(ttlSeconds C.int64_t, shards C.int64_t, out *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	switch {
	case out == nil:
		return fail(e, argError("out pointer is NULL"))
	case ttlSeconds < 0 || int64(ttlSeconds) > math.MaxInt64/int64(time.Second):
		return fail(e, argError("ttl %d seconds is out of range", int64(ttlSeconds)))
	case shards > 1<<16:
		return fail(e, argError("shards %d is more than 65536", int64(shards)))
	}
	ttl := time.Duration(ttlSeconds) * time.Second
	a, err := core.New(core.Options{TTL: ttl, Shards: int(shards)})
	if err != nil {
		return fail(e, err)
	}
	*out = C.poh_handle(newHandle(&aggregator{Aggregator: a, ttl: ttl}))
	return statusOK
}

//export poh_aggregator_record
func poh_aggregator_record(h C.poh_handle, token *C.char, tokenLen C.int64_t, holder *C.char, holderLen C.int64_t,
	start, end C.int64_t, hasEnd C.int, weight C.double, now C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	ev := [1]core.HoldEvent{{Start: int64(start), End: int64(end), HasEnd: hasEnd != 0, Weight: float64(weight)}}
	var err error
	if ev[0].TokenID, err = cString(token, tokenLen, "token"); err != nil {
		return fail(e, err)
	}
	if ev[0].HolderID, err = cString(holder, holderLen, "holder"); err != nil {
		return fail(e, err)
	}
	if _, err := a.RecordAt(nowOr(now, a.Now), ev[:], false); err != nil {
		return fail(e, err)
	}
	return statusOK
}

//export poh_aggregator_record_columns
func poh_aggregator_record_columns(h C.poh_handle, c *C.poh_columns, now C.int64_t, partial C.int,
	accepted *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	if accepted != nil {
		*accepted = 0
	}
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	cols, err := columns(c)
	if err != nil {
		return fail(e, err)
	}
	// The events alias the caller's buffers for the duration of the call
	// only: the aggregator copies the ids it keeps.
	evs, err := eventsOf(cols)
	defer releaseEvents(evs)
	if err != nil {
		return fail(e, err)
	}
	n, err := a.RecordAt(nowOr(now, a.Now), evs, partial != 0)
	if accepted != nil {
		*accepted = C.int64_t(n)
	}
	if err != nil {
		return fail(e, err)
	}
	return statusOK
}

//export poh_aggregator_record_partial
func poh_aggregator_record_partial(h C.poh_handle, c *C.poh_columns, now C.int64_t, accepted *C.int64_t,
	rejected *C.int64_t, rejectedCap C.int64_t, rejectedCount *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	if accepted != nil {
		*accepted = 0
	}
	if rejectedCount != nil {
		*rejectedCount = 0
	}
	a, ok := lookup[*aggregator](uint64(h))
	switch {
	case !ok:
		return fail(e, errBadHandle)
	case rejectedCap < 0:
		return fail(e, argError("rejected_cap %d is negative", int64(rejectedCap)))
	case rejectedCap > 0 && rejected == nil:
		return fail(e, argError("rejected is NULL with rejected_cap %d", int64(rejectedCap)))
	}
	cols, err := columns(c)
	if err != nil {
		return fail(e, err)
	}
	evs, err := eventsOf(cols)
	defer releaseEvents(evs)
	if err != nil {
		return fail(e, err)
	}
	n, err := a.RecordAt(nowOr(now, a.Now), evs, true)
	if accepted != nil {
		*accepted = C.int64_t(n)
	}
	var be *core.BatchError
	if errors.As(err, &be) {
		if rejectedCount != nil {
			*rejectedCount = C.int64_t(len(be.Errors))
		}
		out := cSlice((*int64)(unsafe.Pointer(rejected)), min(int64(rejectedCap), int64(len(be.Errors))))
		for i := range out {
			out[i] = int64(be.Errors[i].Index)
		}
		return fail(e, be.Errors[0]) // the first rejected row, its own message
	}
	if err != nil {
		return fail(e, err)
	}
	return statusOK
}

//export poh_aggregator_close_hold
func poh_aggregator_close_hold(h C.poh_handle, token *C.char, tokenLen C.int64_t, holder *C.char, holderLen C.int64_t,
	at, now C.int64_t, closed *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	tok, err := cString(token, tokenLen, "token")
	if err != nil {
		return fail(e, err)
	}
	hol, err := cString(holder, holderLen, "holder")
	if err != nil {
		return fail(e, err)
	}
	n, err := a.CloseHoldAt(nowOr(now, a.Now), tok, hol, nowOr(at, a.Now))
	if err != nil {
		return fail(e, err)
	}
	if closed != nil {
		*closed = C.int64_t(n)
	}
	return statusOK
}

//export poh_aggregator_gc
func poh_aggregator_gc(h C.poh_handle, now C.int64_t, dropped *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	n, err := a.GC(nowOr(now, a.Now))
	if err != nil {
		return fail(e, err)
	}
	if dropped != nil {
		*dropped = C.int64_t(n)
	}
	return statusOK
}

//export poh_aggregator_start_gc
func poh_aggregator_start_gc(h C.poh_handle, intervalMS C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	if intervalMS <= 0 || int64(intervalMS) > math.MaxInt64/int64(time.Millisecond) {
		return fail(e, argError("gc interval %d ms must be > 0", int64(intervalMS)))
	}
	if err := a.StartGC(time.Duration(intervalMS) * time.Millisecond); err != nil {
		return fail(e, &statusError{statusState, err.Error()})
	}
	return statusOK
}

//export poh_aggregator_stop_gc
func poh_aggregator_stop_gc(h C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	a.StopGC()
	return statusOK
}

//export poh_aggregator_len
func poh_aggregator_len(h C.poh_handle, holders *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	if holders == nil {
		return fail(e, argError("holders pointer is NULL"))
	}
	*holders = C.int64_t(a.Len())
	return statusOK
}

// topCount clamps a requested row count to an int: more rows than any
// aggregator holds mean "all of them".
func topCount(n C.int64_t) int {
	if int64(n) > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n)
}

func statsHandle(rows []core.HolderStat, out *C.poh_handle) {
	r := &statsResult{rows: rows}
	for i := range rows {
		r.bytes += int64(len(rows[i].HolderID))
	}
	*out = C.poh_handle(newHandle(r))
}

//export poh_aggregator_snapshot
func poh_aggregator_snapshot(h C.poh_handle, now C.int64_t, result *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	if result == nil {
		return fail(e, argError("result pointer is NULL"))
	}
	rows, err := a.Snapshot(nowOr(now, a.Now))
	if err != nil {
		return fail(e, err)
	}
	statsHandle(rows, result)
	return statusOK
}

//export poh_aggregator_top_n
func poh_aggregator_top_n(h C.poh_handle, n C.int64_t, now C.int64_t, token *C.char, tokenLen C.int64_t,
	result *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	if result == nil {
		return fail(e, argError("result pointer is NULL"))
	}
	tok, err := cString(token, tokenLen, "token")
	if err != nil {
		return fail(e, err)
	}
	rows, err := a.TopN(topCount(n), nowOr(now, a.Now), tok)
	if err != nil {
		return fail(e, err)
	}
	statsHandle(rows, result)
	return statusOK
}

//export poh_aggregator_pair
func poh_aggregator_pair(h C.poh_handle, token *C.char, tokenLen C.int64_t, holder *C.char, holderLen C.int64_t,
	now C.int64_t, out *C.poh_stat, found *C.int, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	switch {
	case !ok:
		return fail(e, errBadHandle)
	case out == nil:
		return fail(e, argError("out pointer is NULL"))
	case found == nil:
		return fail(e, argError("found pointer is NULL"))
	}
	*out = C.poh_stat{}
	*found = 0
	tok, err := cString(token, tokenLen, "token")
	if err != nil {
		return fail(e, err)
	}
	hol, err := cString(holder, holderLen, "holder")
	if err != nil {
		return fail(e, err)
	}
	st, ok, err := a.Pair(nowOr(now, a.Now), tok, hol)
	if err != nil {
		return fail(e, err)
	}
	if ok {
		*out = C.poh_stat{
			score:         C.double(st.Score),
			total_seconds: C.int64_t(st.TotalSeconds),
			events:        C.int64_t(st.Events),
			open_holds:    C.int64_t(st.OpenHolds),
			tokens:        C.int64_t(st.Tokens),
			updated_at:    C.int64_t(st.UpdatedAt),
			id_offset:     0,
			id_len:        C.int64_t(len(st.HolderID)),
		}
		*found = 1
	}
	return statusOK
}

//export poh_aggregator_metrics_text
func poh_aggregator_metrics_text(h C.poh_handle, result *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	if result == nil {
		return fail(e, argError("result pointer is NULL"))
	}
	text, err := a.MetricsText()
	if err != nil {
		return fail(e, err)
	}
	*result = C.poh_handle(newHandle(&textResult{text}))
	return statusOK
}

//export poh_result_size
func poh_result_size(r C.poh_handle, rows, bytes *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	var nr, nb int64
	if s, ok := lookup[*statsResult](uint64(r)); ok {
		nr, nb = int64(len(s.rows)), s.bytes
	} else if t, ok := lookup[*textResult](uint64(r)); ok {
		nb = int64(len(t.text))
	} else {
		return fail(e, errBadHandle)
	}
	if rows != nil {
		*rows = C.int64_t(nr)
	}
	if bytes != nil {
		*bytes = C.int64_t(nb)
	}
	return statusOK
}

//export poh_result_stats
func poh_result_stats(r C.poh_handle, rows *C.poh_stat, rowsCap C.int64_t, ids *C.char, idsCap C.int64_t,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	s, ok := lookup[*statsResult](uint64(r))
	if !ok {
		return fail(e, errBadHandle)
	}
	n := int64(len(s.rows))
	switch {
	case int64(rowsCap) < n || int64(idsCap) < s.bytes:
		return fail(e, &statusError{statusBufferTooSmall, "result needs " + itoa(n) + " rows and " +
			itoa(s.bytes) + " id bytes"})
	case n > 0 && rows == nil:
		return fail(e, argError("rows is NULL"))
	case s.bytes > 0 && ids == nil:
		return fail(e, argError("ids is NULL"))
	}
	out := cSlice(rows, n)
	idBuf := cSlice((*byte)(unsafe.Pointer(ids)), s.bytes)
	off := int64(0)
	for i := range s.rows {
		st := &s.rows[i]
		copy(idBuf[off:], st.HolderID)
		out[i] = C.poh_stat{
			score:         C.double(st.Score),
			total_seconds: C.int64_t(st.TotalSeconds),
			events:        C.int64_t(st.Events),
			open_holds:    C.int64_t(st.OpenHolds),
			tokens:        C.int64_t(st.Tokens),
			updated_at:    C.int64_t(st.UpdatedAt),
			id_offset:     C.int64_t(off),
			id_len:        C.int64_t(len(st.HolderID)),
		}
		off += int64(len(st.HolderID))
	}
	return statusOK
}

//export poh_result_text
func poh_result_text(r C.poh_handle, buf *C.char, bufCap C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	t, ok := lookup[*textResult](uint64(r))
	if !ok {
		return fail(e, errBadHandle)
	}
	if int64(bufCap) <= int64(len(t.text)) {
		return fail(e, &statusError{statusBufferTooSmall, "text needs " + itoa(int64(len(t.text))+1) + " bytes"})
	}
	if buf == nil {
		return fail(e, argError("buf is NULL"))
	}
	putString(unsafe.Slice(buf, int(bufCap)), t.text)
	return statusOK
}

//export poh_free
func poh_free(h C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	v, ok := release(uint64(h))
	if !ok {
		return fail(e, errBadHandle)
	}
	if a, isAgg := v.(*aggregator); isAgg {
		if err := a.Close(); err != nil {
			return fail(e, err)
		}
	}
	return statusOK
}
