package main

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
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

// statsResult is a snapshot or top-n result.
type statsResult struct {
	rows  []core.HolderStat
	bytes int64 // total holder-id bytes
}

// textResult is a metrics exposition text.
type textResult struct{ text string }

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
func lookup[T any](h uint64) (T, bool) {
	handles.RLock()
	v, ok := handles.m[h]
	handles.RUnlock()
	t, ok2 := v.(T)
	return t, ok && ok2
}

// release removes h and returns what it named.
func release(h uint64) (any, bool) {
	handles.Lock()
	defer handles.Unlock()
	v, ok := handles.m[h]
	if ok {
		delete(handles.m, h)
		liveHandles.Add(-1)
	}
	return v, ok
}

func itoa(i int64) string {
	return strconv.FormatInt(i, 10)
}
