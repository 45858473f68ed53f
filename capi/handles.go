package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
)

// The handle table maps opaque non-zero integers to the objects they name.
// Values are never reused, so a stale handle can never reach a newer object.
// An RWMutex: every call looks a handle up, only new/free write.
var handles = struct {
	sync.RWMutex
	next uint64
	m    map[uint64]any
}{m: make(map[uint64]any)}

var liveHandles atomic.Int64

func newHandle(v any) uint64 {
	handles.Lock()
	defer handles.Unlock()
	handles.next++
	h := handles.next
	handles.m[h] = v
	liveHandles.Add(1)
	return h
}

// lookup returns the object behind h if it exists and has type T.
func lookup[T any](h C.poh_handle) (T, bool) {
	handles.RLock()
	v, ok := handles.m[uint64(h)]
	handles.RUnlock()
	t, ok2 := v.(T)
	return t, ok && ok2
}

// release removes h and returns what it named.
func release(h C.poh_handle) (any, bool) {
	handles.Lock()
	defer handles.Unlock()
	v, ok := handles.m[uint64(h)]
	if ok {
		delete(handles.m, uint64(h))
		liveHandles.Add(-1)
	}
	return v, ok
}

// withAggregator is every aggregator export's preamble: look h up (an error
// status for any other handle) and run f on it, turning its error into the
// status and *e.
func withAggregator(h C.poh_handle, e *C.poh_error, f func(a *aggregator) error) C.int {
	a, ok := lookup[*aggregator](h)
	if !ok {
		return fail(e, errBadHandle)
	}
	return status(e, f(a))
}

// withResult is withAggregator for result handles of kind T.
func withResult[T any](r C.poh_handle, e *C.poh_error, f func(res T) error) C.int {
	res, ok := lookup[T](r)
	if !ok {
		return fail(e, errBadHandle)
	}
	return status(e, f(res))
}
