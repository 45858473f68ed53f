package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/version"
)

// The exports, one per operation, in the header's order. Each one defers
// recoverInto, checks its arguments, and calls core (through the handle's
// writer for writes).

func versionString() string { return version.Version }

//export poh_version
func poh_version(buf *C.char, bufCap C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	v := versionString()
	switch {
	case buf == nil:
		return fail(e, argError("buf is NULL"))
	case int64(bufCap) <= int64(len(v)):
		return fail(e, tooSmall("version needs a buffer of %d bytes", len(v)+1))
	}
	putString(unsafe.Slice(buf, int(bufCap)), v)
	return statusOK
}

//export poh_live_handles
func poh_live_handles() C.int64_t {
	return C.int64_t(liveHandles.Load())
}

//export poh_score
func poh_score(c *C.poh_columns, opts *C.poh_score_options, out *C.poh_score_result, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return status(e, func() error {
		if out == nil {
			return argError("out pointer is NULL")
		}
		o, err := readSized(opts, "poh_score_options")
		if err != nil {
			return err
		}
		if opts == nil {
			o.now = math.MinInt64
		}
		if err := checkFlags("poh_score_options", o.flags,
			C.POH_SCORE_WINDOW|C.POH_SCORE_TWAB|C.POH_SCORE_EXACT|C.POH_SCORE_CONTINUE); err != nil {
			return err
		}
		so := core.ScoreOptions{Now: nowOr(o.now, wallClock), TWAB: o.flags&C.POH_SCORE_TWAB != 0,
			Exact: o.flags&C.POH_SCORE_EXACT != 0}
		acc := [2]float64{}
		if o.flags&C.POH_SCORE_CONTINUE != 0 {
			if so.Exact {
				return argError("POH_SCORE_CONTINUE is float mode's running sum: not with POH_SCORE_EXACT (exact parts add exactly)")
			}
			acc = [2]float64{float64(o.sum), float64(o.comp)}
		}
		if !so.Exact {
			so.Acc = &acc
		}
		switch {
		case o.flags&C.POH_SCORE_WINDOW != 0:
			so.Window = window(o.window)
		case so.TWAB:
			return argError("POH_SCORE_TWAB needs POH_SCORE_WINDOW (a TWAB needs a window)")
		}
		cols, err := columns(c)
		if err != nil {
			return err
		}
		v, err := core.ScoreColumns(cols, so)
		if err != nil {
			return err
		}
		res := C.poh_score_result{score: C.double(v.Float), sum: C.double(acc[0]), comp: C.double(acc[1])}
		if v.Int != nil {
			putExact(&res.exact, v.Int)
		}
		return writeSized(out, res, "poh_score_result")
	}())
}

//export poh_aggregator_new
func poh_aggregator_new(opts *C.poh_aggregator_options, out *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	if out == nil {
		return fail(e, argError("out pointer is NULL"))
	}
	a, err := newAggregator(opts)
	if err != nil {
		return fail(e, err)
	}
	*out = C.poh_handle(newHandle(a))
	return statusOK
}

//export poh_record
func poh_record(h C.poh_handle, c *C.poh_columns, opts *C.poh_record_options, out *C.poh_record_result,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withAggregator(h, e, func(a *aggregator) error {
		o, err := readSized(opts, "poh_record_options")
		if err != nil {
			return err
		}
		if opts == nil {
			o.now = math.MinInt64
		}
		if err := checkFlags("poh_record_options", o.flags, C.POH_RECORD_PARTIAL|C.POH_RECORD_CHECK); err != nil {
			return err
		}
		ro := core.RecordOptions{Partial: o.flags&C.POH_RECORD_PARTIAL != 0}
		check := o.flags&C.POH_RECORD_CHECK != 0
		switch {
		case check && ro.Partial:
			return argError("POH_RECORD_CHECK validates a strict batch: not with POH_RECORD_PARTIAL")
		case out == nil && ro.Partial:
			return argError("out pointer is NULL: a partial batch reports its rejected rows there")
		case out != nil:
			if err := writeSized(out, C.poh_record_result{}, "poh_record_result"); err != nil {
				return err
			}
		}
		cols, err := columns(c)
		if err != nil {
			return err
		}
		// The events alias the caller's buffers for the duration of the call
		// only: the aggregator and the log copy what they keep.
		evs, err := eventsOf(cols)
		defer releaseEvents(evs)
		if err != nil {
			return err
		}
		if check {
			if err := core.ValidateTime(-1, "now", nowOr(o.now, a.agg.Now)); err != nil {
				return err
			}
			return a.agg.Validate(evs)
		}
		n, err := a.record(nowOr(o.now, a.agg.Now), evs, ro)
		var be *core.BatchError
		if ro.Partial && errors.As(err, &be) {
			res := C.poh_record_result{accepted: C.int64_t(n), rejected: C.int64_t(len(be.Errors))}
			res.errors = C.poh_handle(newHandle(newErrorsResult(be.Errors)))
			return writeSized(out, res, "poh_record_result")
		}
		if err != nil {
			return err
		}
		if out != nil {
			return writeSized(out, C.poh_record_result{accepted: C.int64_t(n)}, "poh_record_result")
		}
		return nil
	})
}

//export poh_count_rejected
func poh_count_rejected(h C.poh_handle, c *C.poh_columns, rejected C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withAggregator(h, e, func(a *aggregator) error {
		if rejected < 0 {
			return argError("rejected %d: a count must be >= 0", int64(rejected))
		}
		if c == nil {
			a.agg.CountRejected(int(rejected), 0)
			return nil
		}
		cols, err := columns(c)
		if err != nil {
			return err
		}
		evs, err := eventsOf(cols)
		defer releaseEvents(evs)
		if err != nil {
			return err
		}
		a.agg.CountStrictRefusal(evs, int(rejected))
		return nil
	})
}

//export poh_record_event
func poh_record_event(h C.poh_handle, token *C.char, tokenLen C.int64_t, holder *C.char, holderLen C.int64_t,
	start, end C.int64_t, hasEnd C.int32_t, weight C.double, now C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withAggregator(h, e, func(a *aggregator) error {
		ev := core.HoldEvent{Start: int64(start), End: int64(end), HasEnd: hasEnd != 0, Weight: float64(weight)}
		var err error
		if ev.TokenID, err = cString(token, tokenLen, "token"); err != nil {
			return err
		}
		if ev.HolderID, err = cString(holder, holderLen, "holder"); err != nil {
			return err
		}
		// One event, not a batch of one: no batch is built (core's one-event path).
		return a.storeError("write", core.RecordEvent(a.w, nowOr(now, a.agg.Now), ev))
	})
}

//export poh_close_hold
func poh_close_hold(h C.poh_handle, token *C.char, tokenLen C.int64_t, holder *C.char, holderLen C.int64_t,
	at, now C.int64_t, closed *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withAggregator(h, e, func(a *aggregator) error {
		tok, err := cString(token, tokenLen, "token")
		if err != nil {
			return err
		}
		hol, err := cString(holder, holderLen, "holder")
		if err != nil {
			return err
		}
		n, err := a.w.CloseHold(nowOr(now, a.agg.Now), tok, hol, nowOr(at, a.agg.Now))
		if err != nil {
			return a.storeError("write", err)
		}
		if closed != nil {
			*closed = C.int64_t(n)
		}
		return nil
	})
}

//export poh_gc
func poh_gc(h C.poh_handle, now C.int64_t, dropped *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withAggregator(h, e, func(a *aggregator) error {
		n, err := a.w.GC(nowOr(now, a.agg.Now))
		if err != nil {
			return a.storeError("write", err)
		}
		if dropped != nil {
			*dropped = C.int64_t(n)
		}
		return nil
	})
}

//export poh_gc_schedule
func poh_gc_schedule(h C.poh_handle, intervalMS C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withAggregator(h, e, func(a *aggregator) error {
		switch {
		case intervalMS < 0 || int64(intervalMS) > math.MaxInt64/int64(time.Millisecond):
			return argError("gc interval %d ms must be >= 0 (0 stops it)", int64(intervalMS))
		case intervalMS == 0:
			a.agg.StopGC()
			return nil
		}
		// The one GC loop (core's), collecting through the writer so that a
		// durable store logs every collection before it drops holders.
		err := a.agg.StartGC(time.Duration(intervalMS)*time.Millisecond, func(now int64) { _, _ = a.w.GC(now) })
		if err != nil && !errors.Is(err, core.ErrClosed) {
			return &statusError{statusState, err.Error()}
		}
		return err
	})
}

//export poh_holders
func poh_holders(h C.poh_handle, holders *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withAggregator(h, e, func(a *aggregator) error {
		if holders == nil {
			return argError("holders pointer is NULL")
		}
		*holders = C.int64_t(a.agg.Len())
		return nil
	})
}

//export poh_query
func poh_query(h C.poh_handle, qp *C.poh_query_options, out *C.poh_query_result, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withAggregator(h, e, func(a *aggregator) error {
		if out == nil {
			return argError("out pointer is NULL")
		}
		q, err := readSized(qp, "poh_query_options")
		if err != nil {
			return err
		}
		if qp == nil {
			q.now = math.MinInt64
		}
		if err := checkFlags("poh_query_options", q.flags, C.POH_QUERY_WINDOW|C.POH_QUERY_UNORDERED); err != nil {
			return err
		}
		cq := core.Query{Now: nowOr(q.now, a.agg.Now), N: rowCount(q.n), Unordered: q.flags&C.POH_QUERY_UNORDERED != 0}
		if q.flags&C.POH_QUERY_WINDOW != 0 {
			cq.Window = window(q.window)
		}
		if cq.Token, err = cString(q.token, q.token_len, "token"); err != nil {
			return err
		}
		if cq.Holder, err = cString(q.holder, q.holder_len, "holder"); err != nil {
			return err
		}
		// The rows as columns (core.Grouped: no pointer per row for the
		// collector to scan, nor a string per row to copy), read out by
		// poh_result_stats, in C memory (cAlloc) that only the result keeps:
		// on any way out without one, it is freed here.
		mem, kept := &cAlloc{}, false
		defer func() {
			if !kept {
				mem.free()
			}
		}()
		g, err := a.agg.QueryColumns(cq, mem)
		if errors.Is(err, core.ErrNoHistory) {
			return fmt.Errorf("%w (create the aggregator with POH_AGGREGATOR_HISTORY)", err)
		}
		if err != nil {
			return err
		}
		res := C.poh_query_result{rows: C.int64_t(g.Len()), id_bytes: C.int64_t(len(g.Holders.Data))}
		if g.Len() > 0 {
			first := g.Row(0)
			res.first = statRow(&first, 0)
			if first.Exact != nil {
				putExact(&res.first_exact, first.Exact)
			}
		}
		if cq.Holder == "" {
			res.result = C.poh_handle(newHandle(&statsResult{group: g, mem: mem}))
			kept = true
		}
		return writeSized(out, res, "poh_query_result")
	})
}

// rowCount clamps a requested row count to an int: more rows than any
// aggregator holds mean "all of them" (and negative counts reach core's
// check).
func rowCount(n C.int64_t) int {
	if int64(n) > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(max(n, -1))
}

//export poh_metrics_text
func poh_metrics_text(h C.poh_handle, result *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withAggregator(h, e, func(a *aggregator) error {
		if result == nil {
			return argError("result pointer is NULL")
		}
		text, err := a.agg.MetricsText()
		if err != nil {
			return err
		}
		*result = C.poh_handle(newHandle(&textResult{text}))
		return nil
	})
}

//export poh_result_size
func poh_result_size(r C.poh_handle, rows, bytes *C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	res, ok := lookup[result](r)
	if !ok {
		return fail(e, errBadHandle)
	}
	nr, nb := res.size()
	if rows != nil {
		*rows = C.int64_t(nr)
	}
	if bytes != nil {
		*bytes = C.int64_t(nb)
	}
	return statusOK
}

//export poh_result_stats
func poh_result_stats(r C.poh_handle, out *C.poh_stat_columns, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withResult(r, e, func(s *statsResult) error {
		if out == nil {
			return argError("out pointer is NULL")
		}
		o, err := readSized(out, "poh_stat_columns")
		if err != nil {
			return err
		}
		n, nb := s.size()
		if int64(o.rows_cap) < n || (o.ids != nil && int64(o.ids_cap) < nb) {
			return tooSmall("result needs %s rows and %s id bytes", itoa(n), itoa(nb))
		}
		return s.read(func(g *core.Grouped) error { return copyGroup(g, &o) }) // group.go
	})
}

//export poh_result_errors
func poh_result_errors(r C.poh_handle, rows *C.poh_row_error, rowsCap C.int64_t, text *C.char, textCap C.int64_t,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withResult(r, e, func(s *errorsResult) error {
		return copyRows(s, rows, rowsCap, text, textCap, "text", func(out []C.poh_row_error, buf []byte) {
			off := 0
			for i, ve := range s.errs {
				msg := s.msgs[i]
				copy(buf[off:], msg)
				out[i] = C.poh_row_error{index: C.int64_t(ve.Index), message_offset: C.int64_t(off),
					message_len: C.int64_t(len(msg))}
				putString(out[i].field[:], ve.Field)
				putString(out[i].reason[:], string(ve.Reason))
				off += len(msg)
			}
		})
	})
}

//export poh_result_text
func poh_result_text(r C.poh_handle, buf *C.char, bufCap C.int64_t, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return withResult(r, e, func(t *textResult) error {
		if buf == nil {
			return argError("buf is NULL")
		}
		if int64(bufCap) <= int64(len(t.text)) {
			return tooSmall("text needs %d bytes", len(t.text)+1)
		}
		putString(unsafe.Slice(buf, int(bufCap)), t.text)
		return nil
	})
}

//export poh_free
func poh_free(h C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	v, ok := release(h)
	if !ok {
		return fail(e, errBadHandle)
	}
	if a, isAgg := v.(*aggregator); isAgg {
		return status(e, a.close())
	}
	if s, isStats := v.(*statsResult); isStats && s.mem != nil {
		s.mem.free()
	}
	return statusOK
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
