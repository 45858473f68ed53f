package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"errors"
	"math"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// Campaign windows, TWAB and window queries over history (issue 6). The
// window crosses the boundary as a poh_window pointer: NULL means "no
// window" where a window is optional, and is an argument error where one is
// required. Values are validated by core (Window.Validate), so every error
// names both ends exactly as the Go API and the Python package do.

// errNoHistory carries core.ErrNoHistory's text with its own status code.
var errNoHistory = &statusError{statusNoHistory, core.ErrNoHistory.Error() +
	" (create it with poh_aggregator_new2 and options.history = 1)"}

// window reads an optional poh_window: core.All for NULL.
func window(w *C.poh_window) core.Window {
	if w == nil {
		return core.All
	}
	return core.Window{Start: int64(w.t0), End: int64(w.t1)}
}

// packedColumns unpacks n poh_events (end < 0 = open) into columns, after the
// pointer and length checks every packed-event entry point shares.
func packedColumns(events *C.poh_event, n C.int64_t) (*core.Columns, error) {
	switch {
	case n < 0 || n > maxRows:
		return nil, argError("event count %d is out of range [0, %d]", int64(n), int64(maxRows))
	case n > 0 && events == nil:
		return nil, argError("events is NULL with %d events", int64(n))
	}
	// A few ns per event, then core's single pass.
	evs := cSlice(events, int64(n))
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
	return cols, nil
}

//export poh_score_columns_window
func poh_score_columns_window(c *C.poh_columns, now C.int64_t, w *C.poh_window, score *C.double,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return scoreInto(score, "score", func() (*core.Columns, error) { return columns(c) },
		func(cols *core.Columns) (float64, error) {
			return core.ScoreColumnsWindow(cols, nowOr(now, wallClock), window(w))
		}, e)
}

//export poh_score_events_window
func poh_score_events_window(events *C.poh_event, n C.int64_t, now C.int64_t, w *C.poh_window, score *C.double,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return scoreInto(score, "score", func() (*core.Columns, error) { return packedColumns(events, n) },
		func(cols *core.Columns) (float64, error) {
			return core.ScoreColumnsWindow(cols, nowOr(now, wallClock), window(w))
		}, e)
}

// twabInto is scoreInto for a TWAB, which needs a window: a NULL twab is
// reported first, then a NULL window.
func twabInto(twab *C.double, w *C.poh_window, now C.int64_t, get func() (*core.Columns, error), e *C.poh_error) C.int {
	if twab != nil && w == nil {
		return fail(e, argError("window pointer is NULL (a TWAB needs a window)"))
	}
	return scoreInto(twab, "twab", get, func(cols *core.Columns) (float64, error) {
		return core.TWABColumns(cols, nowOr(now, wallClock), window(w))
	}, e)
}

//export poh_twab_columns
func poh_twab_columns(c *C.poh_columns, now C.int64_t, w *C.poh_window, twab *C.double, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return twabInto(twab, w, now, func() (*core.Columns, error) { return columns(c) }, e)
}

//export poh_twab_events
func poh_twab_events(events *C.poh_event, n C.int64_t, now C.int64_t, w *C.poh_window, twab *C.double,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	return twabInto(twab, w, now, func() (*core.Columns, error) { return packedColumns(events, n) }, e)
}

//export poh_aggregator_new2
func poh_aggregator_new2(opts *C.poh_aggregator_options, out *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	if out == nil {
		return fail(e, argError("out pointer is NULL"))
	}
	co, err := coreOptions(opts)
	if err != nil {
		return fail(e, err)
	}
	a, err := core.New(co)
	if err != nil {
		return fail(e, err)
	}
	*out = C.poh_handle(newHandle(&aggregator{Aggregator: a, ttl: co.TTL}))
	return statusOK
}

// coreOptions checks a poh_aggregator_options (NULL: every default) and
// converts it; poh_aggregator_new2 and poh_aggregator_open share it.
func coreOptions(opts *C.poh_aggregator_options) (core.Options, error) {
	var o C.poh_aggregator_options // NULL: the zero value, every default
	if opts != nil {
		o = *opts
	}
	switch {
	case o.ttl_seconds < 0 || int64(o.ttl_seconds) > math.MaxInt64/int64(time.Second):
		return core.Options{}, argError("ttl %d seconds is out of range", int64(o.ttl_seconds))
	case o.shards > 1<<16:
		return core.Options{}, argError("shards %d is more than 65536", int64(o.shards))
	}
	co := core.Options{TTL: time.Duration(o.ttl_seconds) * time.Second, Shards: int(o.shards),
		History: o.history != 0}
	if o.has_window != 0 {
		w := window(&o.window)
		if err := w.Validate(); err != nil { // the bare validation error (core.New wraps it)
			return core.Options{}, err
		}
		co.Window = &w
	}
	return co, nil
}

// windowQueryError maps core.ErrNoHistory to its status; others pass through.
func windowQueryError(err error) error {
	if errors.Is(err, core.ErrNoHistory) {
		return errNoHistory
	}
	return err
}

//export poh_aggregator_snapshot_window
func poh_aggregator_snapshot_window(h C.poh_handle, now C.int64_t, w *C.poh_window, result *C.poh_handle,
	e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	switch {
	case !ok:
		return fail(e, errBadHandle)
	case result == nil:
		return fail(e, argError("result pointer is NULL"))
	case w == nil:
		return fail(e, argError("window pointer is NULL"))
	}
	rows, err := a.SnapshotWindow(nowOr(now, a.Now), window(w))
	if err != nil {
		return fail(e, windowQueryError(err))
	}
	statsHandle(rows, result)
	return statusOK
}

//export poh_aggregator_top_n_window
func poh_aggregator_top_n_window(h C.poh_handle, n C.int64_t, now C.int64_t, token *C.char, tokenLen C.int64_t,
	w *C.poh_window, result *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	a, ok := lookup[*aggregator](uint64(h))
	switch {
	case !ok:
		return fail(e, errBadHandle)
	case result == nil:
		return fail(e, argError("result pointer is NULL"))
	case w == nil:
		return fail(e, argError("window pointer is NULL"))
	}
	tok, err := cString(token, tokenLen, "token")
	if err != nil {
		return fail(e, err)
	}
	rows, err := a.TopNWindow(topCount(n), nowOr(now, a.Now), tok, window(w))
	if err != nil {
		return fail(e, windowQueryError(err))
	}
	statsHandle(rows, result)
	return statusOK
}
