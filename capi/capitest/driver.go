// Package capitest drives the C API from Go tests. Test files cannot
// `import "C"`, so capi's tests import this ordinary cgo package instead. Its
// C calls resolve, at link time, to the exports of package main (capi) in the
// test binary: it exercises the same symbols a C program links against.
//
// Every buffer handed to the API is C memory (malloc), as a C caller's would
// be; nothing here passes Go pointers across.
package capitest

/*
#cgo LDFLAGS: -Wl,--unresolved-symbols=ignore-all
#include <stdlib.h>
#include <string.h>
#include "../poh_holdmetrics.h"

// null_cases calls each pointer-taking function with NULL where data is
// required (or a negative length) and stores the status codes in out.
static int null_cases(poh_handle agg, poh_handle res, int *out) {
	poh_error e;
	double s;
	int64_t v;
	poh_handle r;
	poh_columns c;
	memset(&c, 0, sizeof c);
	int i = 0;
	out[i++] = poh_score_columns(NULL, 10, &s, &e);
	out[i++] = poh_score_columns(&c, 10, NULL, &e);
	c.n = -1;
	out[i++] = poh_score_columns(&c, 10, &s, &e);
	c.n = 3;                      // start NULL with 3 rows
	out[i++] = poh_score_columns(&c, 10, &s, &e);
	out[i++] = poh_score_events(NULL, 2, 10, &s, &e);
	out[i++] = poh_score_events(NULL, -1, 10, &s, &e);
	out[i++] = poh_aggregator_new(0, 0, NULL, &e);
	out[i++] = poh_aggregator_new(-5, 0, &r, &e);
	out[i++] = poh_aggregator_record(agg, NULL, 3, "a", 1, 0, 1, 1, 1.0, 10, &e);
	out[i++] = poh_aggregator_record(agg, "T", -1, "a", 1, 0, 1, 1, 1.0, 10, &e);
	out[i++] = poh_aggregator_record_columns(agg, NULL, 10, 0, &v, &e);
	out[i++] = poh_aggregator_close_hold(agg, "T", 1, NULL, 4, 5, 10, &v, &e);
	out[i++] = poh_aggregator_snapshot(agg, 10, NULL, &e);
	out[i++] = poh_aggregator_top_n(agg, 3, 10, NULL, 2, &r, &e);
	out[i++] = poh_aggregator_metrics_text(agg, NULL, &e);
	out[i++] = poh_aggregator_len(agg, NULL, &e);
	out[i++] = poh_result_stats(res, NULL, 100, NULL, 100, &e);
	out[i++] = poh_result_text(res, NULL, 100, &e);
	out[i++] = poh_version(NULL, 100, &e);
	out[i++] = poh_aggregator_start_gc(agg, 0, &e);
	// Windows: NULL where a window is required, a bad options struct.
	poh_window w = {0, 10};
	out[i++] = poh_score_columns_window(NULL, 10, &w, &s, &e);
	out[i++] = poh_score_events_window(NULL, 2, 10, NULL, &s, &e);
	out[i++] = poh_twab_columns(&c, 10, NULL, &s, &e);
	out[i++] = poh_twab_events(NULL, 0, 10, &w, NULL, &e);
	out[i++] = poh_twab_events(NULL, 0, 10, NULL, &s, &e);
	out[i++] = poh_aggregator_new2(NULL, NULL, &e);
	poh_aggregator_options o;
	memset(&o, 0, sizeof o);
	o.ttl_seconds = -1;
	out[i++] = poh_aggregator_new2(&o, &r, &e);
	out[i++] = poh_aggregator_snapshot_window(agg, 10, NULL, &r, &e);
	out[i++] = poh_aggregator_snapshot_window(agg, 10, &w, NULL, &e);
	out[i++] = poh_aggregator_top_n_window(agg, 3, 10, NULL, 0, NULL, &r, &e);
	out[i++] = poh_aggregator_top_n_window(agg, 3, 10, NULL, 2, &w, &r, &e);
	out[i++] = poh_aggregator_record_partial(agg, NULL, 10, &v, NULL, 0, &v, &e);
	out[i++] = poh_aggregator_record_partial(agg, &c, 10, &v, NULL, 4, &v, &e);
	out[i++] = poh_aggregator_record_partial(agg, &c, 10, &v, &v, -1, &v, &e);
	poh_stat st;
	int found;
	out[i++] = poh_aggregator_pair(agg, "T", 1, "a", 1, 10, NULL, &found, &e);
	out[i++] = poh_aggregator_pair(agg, "T", 1, "a", 1, 10, &st, NULL, &e);
	out[i++] = poh_aggregator_pair(agg, NULL, 1, "a", 1, 10, &st, &found, &e);
	out[i++] = poh_aggregator_pair(agg, "T", 1, "a", -1, 10, &st, &found, &e);
	poh_store_options so;
	memset(&so, 0, sizeof so);
	out[i++] = poh_aggregator_open("/tmp/x", 6, NULL, &so, NULL, &e);
	out[i++] = poh_aggregator_open(NULL, 6, NULL, &so, &r, &e);
	out[i++] = poh_aggregator_open("/tmp/x", -1, NULL, NULL, &r, &e);
	out[i++] = poh_aggregator_open("/tmp/x", 0, NULL, NULL, &r, &e);
	// err may be NULL: the status alone comes back.
	out[i++] = poh_free(0, NULL);
	return i;
}

// absurd_rows passes a row count no buffer can have: an argument error, not
// a crash.
static int absurd_rows(poh_error *e) {
	int64_t one = 1;
	double s;
	poh_columns c;
	memset(&c, 0, sizeof c);
	c.n = (int64_t)1 << 62;
	c.start = &one;
	return poh_score_columns(&c, 10, &s, e);
}
*/
import "C"

import (
	"unsafe"
)

// Err is a status code with the poh_error the API filled in.
type Err struct {
	Code    int
	Index   int64
	Field   string
	Reason  string
	Message string
}

// Status codes, from the header.
const (
	OK              = int(C.POH_OK)
	InvalidEvent    = int(C.POH_ERR_INVALID_EVENT)
	InvalidArgument = int(C.POH_ERR_INVALID_ARGUMENT)
	BadHandle       = int(C.POH_ERR_BAD_HANDLE)
	NoOpenHold      = int(C.POH_ERR_NO_OPEN_HOLD)
	BufferTooSmall  = int(C.POH_ERR_BUFFER_TOO_SMALL)
	State           = int(C.POH_ERR_STATE)
	Internal        = int(C.POH_ERR_INTERNAL)
	NoHistory       = int(C.POH_ERR_NO_HISTORY)
	Locked          = int(C.POH_ERR_LOCKED)
	Store           = int(C.POH_ERR_STORE)
)

// Now is POH_NOW, the wall-clock sentinel.
const Now = int64(C.POH_NOW)

// cerr is a malloc'd poh_error, poisoned so that fields the API should set
// cannot pass by accident.
type cerr struct{ p *C.poh_error }

func newErr() cerr {
	p := (*C.poh_error)(C.malloc(C.size_t(unsafe.Sizeof(C.poh_error{}))))
	C.memset(unsafe.Pointer(p), 'X', C.size_t(unsafe.Sizeof(C.poh_error{})))
	p.index = 12345
	return cerr{p}
}

func (e cerr) done(rc C.int) Err {
	defer C.free(unsafe.Pointer(e.p))
	if rc == C.POH_OK {
		return Err{}
	}
	return Err{Code: int(rc), Index: int64(e.p.index), Field: C.GoString(&e.p.field[0]),
		Reason: C.GoString(&e.p.reason[0]), Message: C.GoString(&e.p.message[0])}
}

// cbytes copies b into malloc'd memory (never NULL, even for empty b).
func cbytes(b []byte) *C.char {
	p := (*C.char)(C.malloc(C.size_t(len(b) + 1)))
	if len(b) > 0 {
		C.memcpy(unsafe.Pointer(p), unsafe.Pointer(&b[0]), C.size_t(len(b)))
	}
	return p
}

func carray[T any](v []T) *T {
	if v == nil {
		return nil
	}
	var zero T
	p := (*T)(C.malloc(C.size_t(uintptr(len(v)+1) * unsafe.Sizeof(zero))))
	copy(unsafe.Slice(p, len(v)), v)
	return p
}

// Cols is a columnar batch; nil slices are passed as NULL.
type Cols struct {
	Start   []int64
	End     []int64
	HasEnd  []uint8
	Weight  []float64
	Tokens  []string // nil = no token column
	Holders []string // nil = no holder column
}

type ccols struct {
	c    *C.poh_columns
	free []unsafe.Pointer
}

func idCol(ids []string) (data *C.char, n C.int64_t, offsets *C.int64_t, free []unsafe.Pointer) {
	if ids == nil {
		return nil, 0, nil, nil
	}
	var buf []byte
	offs := []int64{0}
	for _, s := range ids {
		buf = append(buf, s...)
		offs = append(offs, int64(len(buf)))
	}
	data, offsets = cbytes(buf), (*C.int64_t)(unsafe.Pointer(carray(offs)))
	return data, C.int64_t(len(buf)), offsets, []unsafe.Pointer{unsafe.Pointer(data), unsafe.Pointer(offsets)}
}

func (c Cols) toC() ccols {
	p := (*C.poh_columns)(C.calloc(1, C.size_t(unsafe.Sizeof(C.poh_columns{}))))
	out := ccols{c: p, free: []unsafe.Pointer{unsafe.Pointer(p)}}
	p.n = C.int64_t(len(c.Start))
	p.start = (*C.int64_t)(unsafe.Pointer(carray(c.Start)))
	p.end = (*C.int64_t)(unsafe.Pointer(carray(c.End)))
	p.has_end = (*C.uint8_t)(unsafe.Pointer(carray(c.HasEnd)))
	p.weight = (*C.double)(unsafe.Pointer(carray(c.Weight)))
	out.free = append(out.free, unsafe.Pointer(p.start), unsafe.Pointer(p.end), unsafe.Pointer(p.has_end),
		unsafe.Pointer(p.weight))
	var f []unsafe.Pointer
	p.token_data, p.token_data_len, p.token_offsets, f = idCol(c.Tokens)
	out.free = append(out.free, f...)
	p.holder_data, p.holder_data_len, p.holder_offsets, f = idCol(c.Holders)
	out.free = append(out.free, f...)
	return out
}

func (c ccols) release() {
	for _, p := range c.free {
		C.free(p)
	}
}

// Version calls poh_version with a buffer of bufCap bytes.
func Version(bufCap int) (string, Err) {
	buf := (*C.char)(C.malloc(C.size_t(bufCap + 1)))
	defer C.free(unsafe.Pointer(buf))
	e := newErr()
	if rc := C.poh_version(buf, C.int64_t(bufCap), e.p); rc != C.POH_OK {
		return "", e.done(rc)
	}
	return C.GoString(buf), e.done(C.POH_OK)
}

// LiveHandles is poh_live_handles.
func LiveHandles() int64 { return int64(C.poh_live_handles()) }

// ScoreColumns is poh_score_columns.
func ScoreColumns(c Cols, now int64) (float64, Err) {
	cc := c.toC()
	defer cc.release()
	var s C.double
	e := newErr()
	rc := C.poh_score_columns(cc.c, C.int64_t(now), &s, e.p)
	return float64(s), e.done(rc)
}

// Event is a packed event (End < 0 = open).
type Event struct {
	Start, End int64
	Weight     float64
}

// ScoreEvents is poh_score_events.
func ScoreEvents(evs []Event, now int64) (float64, Err) {
	p := cevents(evs)
	defer C.free(unsafe.Pointer(p))
	var s C.double
	e := newErr()
	rc := C.poh_score_events(p, C.int64_t(len(evs)), C.int64_t(now), &s, e.p)
	return float64(s), e.done(rc)
}

// Window is a poh_window [T0, T1); a nil *Window is passed as NULL.
type Window struct{ T0, T1 int64 }

// cwin copies w into malloc'd memory (NULL for nil); free it with C.free.
func cwin(w *Window) *C.poh_window {
	if w == nil {
		return nil
	}
	p := (*C.poh_window)(C.malloc(C.size_t(unsafe.Sizeof(C.poh_window{}))))
	p.t0, p.t1 = C.int64_t(w.T0), C.int64_t(w.T1)
	return p
}

func cevents(evs []Event) *C.poh_event {
	p := (*C.poh_event)(C.malloc(C.size_t(uintptr(len(evs)+1) * unsafe.Sizeof(C.poh_event{}))))
	dst := unsafe.Slice(p, len(evs))
	for i := range dst {
		q := &dst[i]
		q.start, q.end, q.weight = C.int64_t(evs[i].Start), C.int64_t(evs[i].End), C.double(evs[i].Weight)
	}
	return p
}

// ScoreColumnsWindow is poh_score_columns_window.
func ScoreColumnsWindow(c Cols, now int64, w *Window) (float64, Err) {
	cc := c.toC()
	defer cc.release()
	cw := cwin(w)
	defer C.free(unsafe.Pointer(cw))
	var s C.double
	e := newErr()
	rc := C.poh_score_columns_window(cc.c, C.int64_t(now), cw, &s, e.p)
	return float64(s), e.done(rc)
}

// ScoreEventsWindow is poh_score_events_window.
func ScoreEventsWindow(evs []Event, now int64, w *Window) (float64, Err) {
	p := cevents(evs)
	defer C.free(unsafe.Pointer(p))
	cw := cwin(w)
	defer C.free(unsafe.Pointer(cw))
	var s C.double
	e := newErr()
	rc := C.poh_score_events_window(p, C.int64_t(len(evs)), C.int64_t(now), cw, &s, e.p)
	return float64(s), e.done(rc)
}

// TWABColumns is poh_twab_columns.
func TWABColumns(c Cols, now int64, w *Window) (float64, Err) {
	cc := c.toC()
	defer cc.release()
	cw := cwin(w)
	defer C.free(unsafe.Pointer(cw))
	var s C.double
	e := newErr()
	rc := C.poh_twab_columns(cc.c, C.int64_t(now), cw, &s, e.p)
	return float64(s), e.done(rc)
}

// TWABEvents is poh_twab_events.
func TWABEvents(evs []Event, now int64, w *Window) (float64, Err) {
	p := cevents(evs)
	defer C.free(unsafe.Pointer(p))
	cw := cwin(w)
	defer C.free(unsafe.Pointer(cw))
	var s C.double
	e := newErr()
	rc := C.poh_twab_events(p, C.int64_t(len(evs)), C.int64_t(now), cw, &s, e.p)
	return float64(s), e.done(rc)
}

// Options is poh_aggregator_options (Window nil = no campaign window).
type Options struct {
	TTLSeconds, Shards int64
	Window             *Window
	History            bool
}

// NewAggregator2 is poh_aggregator_new2.
func NewAggregator2(o Options) (uint64, Err) {
	p := (*C.poh_aggregator_options)(C.calloc(1, C.size_t(unsafe.Sizeof(C.poh_aggregator_options{}))))
	defer C.free(unsafe.Pointer(p))
	p.ttl_seconds, p.shards = C.int64_t(o.TTLSeconds), C.int64_t(o.Shards)
	if o.Window != nil {
		p.has_window = 1
		p.window.t0, p.window.t1 = C.int64_t(o.Window.T0), C.int64_t(o.Window.T1)
	}
	if o.History {
		p.history = 1
	}
	var h C.poh_handle
	e := newErr()
	rc := C.poh_aggregator_new2(p, &h, e.p)
	return uint64(h), e.done(rc)
}

// StoreOptions is poh_store_options.
type StoreOptions struct {
	Fsync           int // FsyncInterval, FsyncAlways, FsyncNone (or anything, to test the check)
	FsyncIntervalMS int64
	SnapshotBytes   int64
}

// Fsync policies, from the header.
const (
	FsyncInterval = int(C.POH_FSYNC_INTERVAL)
	FsyncAlways   = int(C.POH_FSYNC_ALWAYS)
	FsyncNone     = int(C.POH_FSYNC_NONE)
)

// Open is poh_aggregator_open (path "" is passed as NULL, 0).
func Open(path string, o Options, so StoreOptions) (uint64, Err) {
	p := (*C.poh_aggregator_options)(C.calloc(1, C.size_t(unsafe.Sizeof(C.poh_aggregator_options{}))))
	defer C.free(unsafe.Pointer(p))
	p.ttl_seconds, p.shards = C.int64_t(o.TTLSeconds), C.int64_t(o.Shards)
	if o.Window != nil {
		p.has_window = 1
		p.window.t0, p.window.t1 = C.int64_t(o.Window.T0), C.int64_t(o.Window.T1)
	}
	if o.History {
		p.history = 1
	}
	sp := (*C.poh_store_options)(C.calloc(1, C.size_t(unsafe.Sizeof(C.poh_store_options{}))))
	defer C.free(unsafe.Pointer(sp))
	sp.fsync = C.int32_t(so.Fsync)
	sp.fsync_interval_ms = C.int64_t(so.FsyncIntervalMS)
	sp.snapshot_bytes = C.int64_t(so.SnapshotBytes)
	var cp *C.char
	if path != "" {
		cp = cbytes([]byte(path))
		defer C.free(unsafe.Pointer(cp))
	}
	var h C.poh_handle
	e := newErr()
	rc := C.poh_aggregator_open(cp, C.int64_t(len(path)), p, sp, &h, e.p)
	return uint64(h), e.done(rc)
}

// RecordPartial is poh_aggregator_record_partial with room for rejectedCap
// indices; it returns the accepted count, the rejected count and the indices.
func RecordPartial(h uint64, c Cols, now, rejectedCap int64) (int64, int64, []int64, Err) {
	cc := c.toC()
	defer cc.release()
	idx := (*C.int64_t)(C.malloc(C.size_t(8 * (rejectedCap + 1))))
	defer C.free(unsafe.Pointer(idx))
	var acc, nrej C.int64_t
	e := newErr()
	rc := C.poh_aggregator_record_partial(C.poh_handle(h), cc.c, C.int64_t(now), &acc, idx, C.int64_t(rejectedCap),
		&nrej, e.p)
	var out []int64
	for _, v := range unsafe.Slice(idx, min(int64(nrej), rejectedCap)) {
		out = append(out, int64(v))
	}
	return int64(acc), int64(nrej), out, e.done(rc)
}

// SnapshotWindow is poh_aggregator_snapshot_window; it returns a result handle.
func SnapshotWindow(h uint64, now int64, w *Window) (uint64, Err) {
	cw := cwin(w)
	defer C.free(unsafe.Pointer(cw))
	var r C.poh_handle
	e := newErr()
	rc := C.poh_aggregator_snapshot_window(C.poh_handle(h), C.int64_t(now), cw, &r, e.p)
	return uint64(r), e.done(rc)
}

// TopNWindow is poh_aggregator_top_n_window ("" = every token).
func TopNWindow(h uint64, n, now int64, token string, w *Window) (uint64, Err) {
	var t *C.char
	if token != "" {
		t = cbytes([]byte(token))
		defer C.free(unsafe.Pointer(t))
	}
	cw := cwin(w)
	defer C.free(unsafe.Pointer(cw))
	var r C.poh_handle
	e := newErr()
	rc := C.poh_aggregator_top_n_window(C.poh_handle(h), C.int64_t(n), C.int64_t(now), t, C.int64_t(len(token)), cw,
		&r, e.p)
	return uint64(r), e.done(rc)
}

// NewAggregator is poh_aggregator_new.
func NewAggregator(ttlSeconds, shards int64) (uint64, Err) {
	var h C.poh_handle
	e := newErr()
	rc := C.poh_aggregator_new(C.int64_t(ttlSeconds), C.int64_t(shards), &h, e.p)
	return uint64(h), e.done(rc)
}

// Record is poh_aggregator_record.
func Record(h uint64, token, holder string, start, end int64, hasEnd bool, weight float64, now int64) Err {
	t, ho := cbytes([]byte(token)), cbytes([]byte(holder))
	defer C.free(unsafe.Pointer(t))
	defer C.free(unsafe.Pointer(ho))
	he := C.int(0)
	if hasEnd {
		he = 1
	}
	e := newErr()
	rc := C.poh_aggregator_record(C.poh_handle(h), t, C.int64_t(len(token)), ho, C.int64_t(len(holder)),
		C.int64_t(start), C.int64_t(end), he, C.double(weight), C.int64_t(now), e.p)
	return e.done(rc)
}

// RecordColumns is poh_aggregator_record_columns.
func RecordColumns(h uint64, c Cols, now int64, partial bool) (int64, Err) {
	cc := c.toC()
	defer cc.release()
	p := C.int(0)
	if partial {
		p = 1
	}
	var n C.int64_t
	e := newErr()
	rc := C.poh_aggregator_record_columns(C.poh_handle(h), cc.c, C.int64_t(now), p, &n, e.p)
	return int64(n), e.done(rc)
}

// CloseHold is poh_aggregator_close_hold.
func CloseHold(h uint64, token, holder string, at, now int64) (int64, Err) {
	t, ho := cbytes([]byte(token)), cbytes([]byte(holder))
	defer C.free(unsafe.Pointer(t))
	defer C.free(unsafe.Pointer(ho))
	var n C.int64_t
	e := newErr()
	rc := C.poh_aggregator_close_hold(C.poh_handle(h), t, C.int64_t(len(token)), ho, C.int64_t(len(holder)),
		C.int64_t(at), C.int64_t(now), &n, e.p)
	return int64(n), e.done(rc)
}

// GC is poh_aggregator_gc.
func GC(h uint64, now int64) (int64, Err) {
	var n C.int64_t
	e := newErr()
	rc := C.poh_aggregator_gc(C.poh_handle(h), C.int64_t(now), &n, e.p)
	return int64(n), e.done(rc)
}

// StartGC is poh_aggregator_start_gc.
func StartGC(h uint64, ms int64) Err {
	e := newErr()
	return e.done(C.poh_aggregator_start_gc(C.poh_handle(h), C.int64_t(ms), e.p))
}

// StopGC is poh_aggregator_stop_gc.
func StopGC(h uint64) Err {
	e := newErr()
	return e.done(C.poh_aggregator_stop_gc(C.poh_handle(h), e.p))
}

// Len is poh_aggregator_len.
func Len(h uint64) (int64, Err) {
	var n C.int64_t
	e := newErr()
	rc := C.poh_aggregator_len(C.poh_handle(h), &n, e.p)
	return int64(n), e.done(rc)
}

// Snapshot is poh_aggregator_snapshot; it returns a result handle.
func Snapshot(h uint64, now int64) (uint64, Err) {
	var r C.poh_handle
	e := newErr()
	rc := C.poh_aggregator_snapshot(C.poh_handle(h), C.int64_t(now), &r, e.p)
	return uint64(r), e.done(rc)
}

// TopN is poh_aggregator_top_n ("" = every token, passed as NULL, 0).
func TopN(h uint64, n, now int64, token string) (uint64, Err) {
	var t *C.char
	if token != "" {
		t = cbytes([]byte(token))
		defer C.free(unsafe.Pointer(t))
	}
	var r C.poh_handle
	e := newErr()
	rc := C.poh_aggregator_top_n(C.poh_handle(h), C.int64_t(n), C.int64_t(now), t, C.int64_t(len(token)), &r, e.p)
	return uint64(r), e.done(rc)
}

// Pair is poh_aggregator_pair: the (holder, token) row and whether it exists.
// The ids are passed as given (an empty string as NULL, 0).
func Pair(h uint64, token, holder string, now int64) (Stat, bool, Err) {
	var t, ho *C.char
	if token != "" {
		t = cbytes([]byte(token))
		defer C.free(unsafe.Pointer(t))
	}
	if holder != "" {
		ho = cbytes([]byte(holder))
		defer C.free(unsafe.Pointer(ho))
	}
	st := (*C.poh_stat)(C.malloc(C.size_t(unsafe.Sizeof(C.poh_stat{}))))
	defer C.free(unsafe.Pointer(st))
	C.memset(unsafe.Pointer(st), 'X', C.size_t(unsafe.Sizeof(C.poh_stat{})))
	found := (*C.int)(C.malloc(C.size_t(unsafe.Sizeof(C.int(0)))))
	defer C.free(unsafe.Pointer(found))
	*found = 7
	e := newErr()
	rc := C.poh_aggregator_pair(C.poh_handle(h), t, C.int64_t(len(token)), ho, C.int64_t(len(holder)),
		C.int64_t(now), st, found, e.p)
	if rc != C.POH_OK {
		return Stat{}, false, e.done(rc)
	}
	e.done(rc)
	if *found != 0 && *found != 1 {
		return Stat{}, false, Err{Code: Internal, Message: "found is neither 0 nor 1"}
	}
	if st.id_offset != 0 || (*found == 1 && int(st.id_len) != len(holder)) {
		return Stat{}, false, Err{Code: Internal, Message: "id_offset/id_len do not describe the holder buffer"}
	}
	out := Stat{Score: float64(st.score), TotalSeconds: int64(st.total_seconds), Events: int64(st.events),
		OpenHolds: int64(st.open_holds), Tokens: int64(st.tokens), Updated: int64(st.updated_at)}
	if *found == 1 {
		out.HolderID = holder
	}
	return out, *found == 1, Err{}
}

// MetricsText is poh_aggregator_metrics_text; it returns a result handle.
func MetricsText(h uint64) (uint64, Err) {
	var r C.poh_handle
	e := newErr()
	rc := C.poh_aggregator_metrics_text(C.poh_handle(h), &r, e.p)
	return uint64(r), e.done(rc)
}

// Size is poh_result_size.
func Size(r uint64) (rows, bytes int64, err Err) {
	var nr, nb C.int64_t
	e := newErr()
	rc := C.poh_result_size(C.poh_handle(r), &nr, &nb, e.p)
	return int64(nr), int64(nb), e.done(rc)
}

// Stat is one row of a stats result.
type Stat struct {
	HolderID                                         string
	Score                                            float64
	TotalSeconds, Events, OpenHolds, Tokens, Updated int64
}

// Stats reads a stats result through poh_result_stats, with buffers of the
// sizes poh_result_size reports plus extraRows / extraBytes (negative to
// provoke POH_ERR_BUFFER_TOO_SMALL).
func Stats(r uint64, extraRows, extraBytes int64) ([]Stat, Err) {
	nr, nb, err := Size(r)
	if err.Code != OK {
		return nil, err
	}
	rows := (*C.poh_stat)(C.malloc(C.size_t(uintptr(nr+1) * unsafe.Sizeof(C.poh_stat{}))))
	ids := (*C.char)(C.malloc(C.size_t(nb + 1)))
	defer C.free(unsafe.Pointer(rows))
	defer C.free(unsafe.Pointer(ids))
	e := newErr()
	if rc := C.poh_result_stats(C.poh_handle(r), rows, C.int64_t(nr+extraRows), ids, C.int64_t(nb+extraBytes),
		e.p); rc != C.POH_OK {
		return nil, e.done(rc)
	}
	e.done(C.POH_OK)
	idb := C.GoBytes(unsafe.Pointer(ids), C.int(nb))
	var out []Stat
	for _, s := range unsafe.Slice(rows, nr) {
		out = append(out, Stat{
			HolderID: string(idb[s.id_offset : s.id_offset+s.id_len]), Score: float64(s.score),
			TotalSeconds: int64(s.total_seconds), Events: int64(s.events), OpenHolds: int64(s.open_holds),
			Tokens: int64(s.tokens), Updated: int64(s.updated_at),
		})
	}
	return out, Err{}
}

// Text reads a text result through poh_result_text with a buffer of
// size+1+extra bytes.
func Text(r uint64, extra int64) (string, Err) {
	_, nb, err := Size(r)
	if err.Code != OK {
		return "", err
	}
	buf := (*C.char)(C.malloc(C.size_t(nb + 1 + max(extra, 0))))
	defer C.free(unsafe.Pointer(buf))
	e := newErr()
	if rc := C.poh_result_text(C.poh_handle(r), buf, C.int64_t(nb+1+extra), e.p); rc != C.POH_OK {
		return "", e.done(rc)
	}
	e.done(C.POH_OK)
	return C.GoStringN(buf, C.int(nb)), Err{}
}

// Free is poh_free.
func Free(h uint64) Err {
	e := newErr()
	return e.done(C.poh_free(C.poh_handle(h), e.p))
}

// NullCases runs the NULL-pointer / negative-length calls of null_cases
// against an aggregator and a stats result, returning each status code.
func NullCases(agg, res uint64) []int {
	out := make([]int, 64)
	buf := (*C.int)(C.malloc(C.size_t(64 * unsafe.Sizeof(C.int(0)))))
	defer C.free(unsafe.Pointer(buf))
	n := int(C.null_cases(C.poh_handle(agg), C.poh_handle(res), buf))
	for i, v := range unsafe.Slice(buf, n) {
		out[i] = int(v)
	}
	return out[:n]
}

// AbsurdRows passes a row count of 2^62 with a one-element buffer.
func AbsurdRows() Err {
	e := newErr()
	return e.done(C.absurd_rows(e.p))
}
