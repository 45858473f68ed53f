// Package capitest drives the C API from Go tests. Test files cannot
// `import "C"`, so capi's tests import this ordinary cgo package instead. Its
// C calls resolve, at link time, to the exports of package main (capi) in the
// test binary: it exercises the same symbols a C program links against.
//
// Every buffer handed to the API is C memory (malloc), as a C caller's would
// be; nothing here passes Go pointers across. There is one wrapper per
// export, taking the option values the export's struct has.
package capitest

/*
#cgo LDFLAGS: -Wl,--unresolved-symbols=ignore-all
#include <stdlib.h>
#include <string.h>
#include "../poh_holdmetrics.h"

// null_cases calls each pointer-taking function with NULL where data is
// required (or a negative length) and stores the status codes in out.
static int null_cases(poh_handle agg, poh_handle res, poh_handle txt, int *out) {
	poh_error e;
	int64_t v;
	poh_handle r;
	poh_columns c = POH_INIT(poh_columns);
	poh_score_result s = POH_INIT(poh_score_result);
	poh_record_result rr = POH_INIT(poh_record_result);
	poh_query_result qr = POH_INIT(poh_query_result);
	poh_record_options partial = POH_INIT(poh_record_options);
	partial.flags = POH_RECORD_PARTIAL;
	int i = 0;
	out[i++] = poh_score(NULL, NULL, &s, &e);
	out[i++] = poh_score(&c, NULL, NULL, &e);
	c.n = -1;
	out[i++] = poh_score(&c, NULL, &s, &e);
	c.n = 3;                      // start NULL with 3 rows
	out[i++] = poh_score(&c, NULL, &s, &e);
	out[i++] = poh_aggregator_new(NULL, NULL, &e);
	out[i++] = poh_record_event(agg, NULL, 3, "a", 1, 0, 1, 1, 1.0, 10, &e);
	out[i++] = poh_record_event(agg, "T", -1, "a", 1, 0, 1, 1, 1.0, 10, &e);
	out[i++] = poh_record(agg, NULL, NULL, &rr, &e);
	c.n = 0;
	out[i++] = poh_record(agg, &c, &partial, NULL, &e); // partial needs out
	out[i++] = poh_close_hold(agg, "T", 1, NULL, 4, 5, 10, &v, &e);
	out[i++] = poh_query(agg, NULL, NULL, &e);
	poh_query_options q = POH_INIT(poh_query_options);
	q.token_len = 2;              // token NULL with length 2
	out[i++] = poh_query(agg, &q, &qr, &e);
	q.token_len = 0;
	q.holder_len = -1;
	out[i++] = poh_query(agg, &q, &qr, &e);
	out[i++] = poh_metrics_text(agg, NULL, &e);
	out[i++] = poh_holders(agg, NULL, &e);
	out[i++] = poh_result_stats(res, NULL, &e);
	out[i++] = poh_transfers(NULL, NULL, NULL, NULL, &e);
	out[i++] = poh_allocate(NULL, NULL, NULL, &e);
	out[i++] = poh_airdrop(0, NULL, &r, &e);
	out[i++] = poh_result_text(txt, NULL, 1 << 20, &e); // cap fits: the NULL is the fault
	out[i++] = poh_version(NULL, 100, &e);
	out[i++] = poh_gc_schedule(agg, -1, &e);
	poh_aggregator_options o = POH_INIT(poh_aggregator_options);
	o.ttl_seconds = -1;
	out[i++] = poh_aggregator_new(&o, &r, &e);
	o.ttl_seconds = 0;
	o.path_len = 6;               // path NULL with length 6
	out[i++] = poh_aggregator_new(&o, &r, &e);
	o.path_len = -1;
	out[i++] = poh_aggregator_new(&o, &r, &e);
	// err may be NULL: the status alone comes back.
	out[i++] = poh_free(0, NULL);
	return i;
}

// absurd_rows passes a row count no buffer can have: an argument error, not
// a crash.
static int absurd_rows(poh_error *e) {
	int64_t one = 1;
	poh_columns c = POH_INIT(poh_columns);
	poh_score_result s = POH_INIT(poh_score_result);
	c.n = (int64_t)1 << 62;
	c.start = &one;
	return poh_score(&c, NULL, &s, e);
}

// sized_options calls poh_score with an options struct of the given size
// whose bytes past sizeof(poh_score_options) are extra (a newer caller's
// field): the library must read only `size` bytes, and refuse extra
// non-zero ones.
static int sized_options(uint32_t size, unsigned char extra, double *score, poh_error *e) {
	int64_t start[] = {0};
	int64_t end[] = {10};
	poh_columns c = POH_INIT(poh_columns);
	c.n = 1;
	c.start = start;
	c.end = end;
	unsigned char buf[sizeof(poh_score_options) + 16];
	memset(buf, 0, sizeof buf);
	poh_score_options o = POH_INIT(poh_score_options);
	o.now = 5;
	memcpy(buf, &o, sizeof o);
	memcpy(buf, &size, sizeof size);
	buf[sizeof(poh_score_options) + 3] = extra;
	poh_score_result s = POH_INIT(poh_score_result);
	int rc = poh_score(&c, (poh_score_options *)buf, &s, e);
	*score = s.score;
	return rc;
}
*/
import "C"

import (
	"math/big"
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

// Fsync policies, from the header.
const (
	FsyncInterval = int(C.POH_FSYNC_INTERVAL)
	FsyncAlways   = int(C.POH_FSYNC_ALWAYS)
	FsyncNone     = int(C.POH_FSYNC_NONE)
)

// Now is POH_NOW, the wall-clock sentinel.
const Now = int64(C.POH_NOW)

// Record flags, from the header.
const (
	RecordPartial = uint32(C.POH_RECORD_PARTIAL)
	RecordCheck   = uint32(C.POH_RECORD_CHECK)
)

// QueryUnordered is POH_QUERY_UNORDERED, a poh_query_options flag.
const QueryUnordered = uint32(C.POH_QUERY_UNORDERED)

// The layouts of poh_share_columns.exact and poh_award_columns.amount.
const (
	SharesInt64      = uint32(C.POH_SHARES_INT64)
	SharesDecimal128 = uint32(C.POH_SHARES_DECIMAL128)
	AwardsDecimal128 = uint32(C.POH_AWARDS_DECIMAL128)
	AwardsDecimal256 = uint32(C.POH_AWARDS_DECIMAL256)
)

// ScoreOptionsSize is sizeof(poh_score_options) in this header (for ScoreSized).
const ScoreOptionsSize = uint32(unsafe.Sizeof(C.poh_score_options{}))

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

// mem collects malloc'd blocks to free after a call.
type mem []unsafe.Pointer

func (m *mem) free() {
	for _, p := range *m {
		C.free(p)
	}
}

// alloc is a zeroed C array of n T (at least one, so it is never NULL).
func alloc[T any](m *mem, n int) *T {
	var zero T
	p := C.calloc(C.size_t(max(n, 1)), C.size_t(unsafe.Sizeof(zero)))
	*m = append(*m, p)
	return (*T)(p)
}

// sized is a zeroed C struct with its size field set, as POH_INIT makes it.
func sized[T any](m *mem) *T {
	p := alloc[T](m, 1)
	*(*C.uint32_t)(unsafe.Pointer(p)) = C.uint32_t(unsafe.Sizeof(*p))
	return p
}

// carray copies v into C memory (NULL for nil v).
func carray[T any](m *mem, v []T) *T {
	if v == nil {
		return nil
	}
	p := alloc[T](m, len(v))
	copy(unsafe.Slice(p, len(v)), v)
	return p
}

// cstr copies s into C memory; an empty s is passed as NULL, 0.
func cstr(m *mem, s string) (*C.char, C.int64_t) {
	if s == "" {
		return nil, 0
	}
	return carray(m, []C.char(unsafe.Slice((*C.char)(unsafe.Pointer(unsafe.StringData(s))), len(s)))), C.int64_t(len(s))
}

// Version calls poh_version with a buffer of bufCap bytes.
func Version(bufCap int) (string, Err) {
	var m mem
	defer m.free()
	buf := alloc[C.char](&m, bufCap+1)
	e := newErr()
	if rc := C.poh_version(buf, C.int64_t(bufCap), e.p); rc != C.POH_OK {
		return "", e.done(rc)
	}
	return C.GoString(buf), e.done(C.POH_OK)
}

// LiveHandles is poh_live_handles.
func LiveHandles() int64 { return int64(C.poh_live_handles()) }

// Event is a packed event (End < 0 = open).
type Event struct {
	Start, End int64
	Weight     float64
}

// Cols is a batch: columns (nil slices are passed as NULL), or, with Rows
// set, the packed rows layout.
type Cols struct {
	Start   []int64
	End     []int64
	HasEnd  []uint8
	Weight  []float64
	Tokens  []string // nil = no token column
	Holders []string // nil = no holder column
	Rows    []Event
	Wei     []string // exact weights, decimal (nil = no weight_u256 column)
}

func idCol(m *mem, ids []string) (data *C.char, n C.int64_t, offsets *C.int64_t) {
	if ids == nil {
		return nil, 0, nil
	}
	var buf []C.char
	offs := []C.int64_t{0}
	for _, s := range ids {
		for i := 0; i < len(s); i++ {
			buf = append(buf, C.char(s[i]))
		}
		offs = append(offs, C.int64_t(len(buf)))
	}
	return carray(m, append(buf, 0)), C.int64_t(len(buf)), carray(m, offs)
}

func (c Cols) toC(m *mem) *C.poh_columns {
	p := sized[C.poh_columns](m)
	p.n = C.int64_t(len(c.Start))
	if c.Rows != nil {
		p.n = C.int64_t(len(c.Rows))
		rows := alloc[C.poh_event](m, len(c.Rows))
		for i, r := range c.Rows {
			q := &unsafe.Slice(rows, len(c.Rows))[i]
			q.start, q.end, q.weight = C.int64_t(r.Start), C.int64_t(r.End), C.double(r.Weight)
		}
		p.rows = rows
	}
	p.start = (*C.int64_t)(unsafe.Pointer(carray(m, c.Start)))
	p.end = (*C.int64_t)(unsafe.Pointer(carray(m, c.End)))
	p.has_end = (*C.uint8_t)(unsafe.Pointer(carray(m, c.HasEnd)))
	p.weight = (*C.double)(unsafe.Pointer(carray(m, c.Weight)))
	p.token_data, p.token_data_len, p.token_offsets = idCol(m, c.Tokens)
	p.holder_data, p.holder_data_len, p.holder_offsets = idCol(m, c.Holders)
	if c.Wei != nil {
		p.weight_u256 = weiColumn(m, c.Wei, 32)
	}
	return p
}

// weiColumn is decimal integers as width-byte big-endian rows in C memory.
func weiColumn(m *mem, vals []string, width int) *C.uint8_t {
	p := alloc[C.uint8_t](m, width*len(vals))
	buf := unsafe.Slice((*byte)(unsafe.Pointer(p)), width*len(vals))
	for i, v := range vals {
		b, ok := new(big.Int).SetString(v, 10)
		if !ok || b.Sign() < 0 || b.BitLen() > 8*width {
			panic("weiColumn: " + v)
		}
		b.FillBytes(buf[width*i : width*i+width])
	}
	return p
}

// Window is a poh_window [T0, T1).
type Window struct{ T0, T1 int64 }

// ScoreOpts is poh_score_options (Window nil: no POH_SCORE_WINDOW; Flags:
// extra raw bits).
type ScoreOpts struct {
	Now    int64
	Window *Window
	TWAB   bool
	Exact  bool
	Flags  uint32
}

// Score is poh_score.
func Score(c Cols, o ScoreOpts) (float64, Err) {
	var m mem
	defer m.free()
	p := sized[C.poh_score_options](&m)
	p.now, p.flags = C.int64_t(o.Now), C.uint32_t(o.Flags)
	if o.Window != nil {
		p.flags |= C.POH_SCORE_WINDOW
		p.window.t0, p.window.t1 = C.int64_t(o.Window.T0), C.int64_t(o.Window.T1)
	}
	if o.TWAB {
		p.flags |= C.POH_SCORE_TWAB
	}
	if o.Exact {
		p.flags |= C.POH_SCORE_EXACT
	}
	out := sized[C.poh_score_result](&m)
	e := newErr()
	rc := C.poh_score(c.toC(&m), p, out, e.p)
	return float64(out.score), e.done(rc)
}

// ScorePart is poh_score with POH_SCORE_CONTINUE from the pair (sum, comp)
// (plus o's flags): the score so far and the pair after c's rows.
func ScorePart(c Cols, o ScoreOpts, sum, comp float64) (score, outSum, outComp float64, err Err) {
	var m mem
	defer m.free()
	p := sized[C.poh_score_options](&m)
	p.now, p.flags = C.int64_t(o.Now), C.uint32_t(o.Flags)|C.POH_SCORE_CONTINUE
	p.sum, p.comp = C.double(sum), C.double(comp)
	if o.Window != nil {
		p.flags |= C.POH_SCORE_WINDOW
		p.window.t0, p.window.t1 = C.int64_t(o.Window.T0), C.int64_t(o.Window.T1)
	}
	if o.TWAB {
		p.flags |= C.POH_SCORE_TWAB
	}
	if o.Exact {
		p.flags |= C.POH_SCORE_EXACT
	}
	out := sized[C.poh_score_result](&m)
	e := newErr()
	rc := C.poh_score(c.toC(&m), p, out, e.p)
	return float64(out.score), float64(out.sum), float64(out.comp), e.done(rc)
}

// CountRejected is poh_count_rejected (c nil: NULL columns).
func CountRejected(h uint64, c *Cols, rejected int64) Err {
	var m mem
	defer m.free()
	var p *C.poh_columns
	if c != nil {
		p = c.toC(&m)
	}
	e := newErr()
	return e.done(C.poh_count_rejected(C.poh_handle(h), p, C.int64_t(rejected), e.p))
}

// ScoreExact is poh_score in exact mode: the exact score in decimal.
func ScoreExact(c Cols, o ScoreOpts) (string, Err) {
	var m mem
	defer m.free()
	p := sized[C.poh_score_options](&m)
	p.now, p.flags = C.int64_t(o.Now), C.uint32_t(o.Flags)|C.POH_SCORE_EXACT
	if o.Window != nil {
		p.flags |= C.POH_SCORE_WINDOW
		p.window.t0, p.window.t1 = C.int64_t(o.Window.T0), C.int64_t(o.Window.T1)
	}
	if o.TWAB {
		p.flags |= C.POH_SCORE_TWAB
	}
	out := sized[C.poh_score_result](&m)
	e := newErr()
	rc := C.poh_score(c.toC(&m), p, out, e.p)
	return new(big.Int).SetBytes(C.GoBytes(unsafe.Pointer(&out.exact[0]), 48)).String(), e.done(rc)
}

// ScoreSized is poh_score of [0, 10) at now 5 with an options struct of the
// given size, extra being a byte past this header's struct.
func ScoreSized(size uint32, extra byte) (float64, Err) {
	var s C.double
	e := newErr()
	rc := C.sized_options(C.uint32_t(size), C.uchar(extra), &s, e.p)
	return float64(s), e.done(rc)
}

// Options is poh_aggregator_options (Window nil = no campaign window, Path
// "" = in memory).
type Options struct {
	TTLSeconds, Shards int64
	Window             *Window
	History            bool
	Exact              bool
	Path               string
	Fsync              int
	FsyncIntervalMS    int64
	SnapshotBytes      int64
	Flags              uint32 // extra raw bits
}

// New is poh_aggregator_new.
func New(o Options) (uint64, Err) {
	var m mem
	defer m.free()
	p := sized[C.poh_aggregator_options](&m)
	p.ttl_seconds, p.shards, p.flags = C.int64_t(o.TTLSeconds), C.int64_t(o.Shards), C.uint32_t(o.Flags)
	if o.Window != nil {
		p.flags |= C.POH_AGGREGATOR_WINDOW
		p.window.t0, p.window.t1 = C.int64_t(o.Window.T0), C.int64_t(o.Window.T1)
	}
	if o.History {
		p.flags |= C.POH_AGGREGATOR_HISTORY
	}
	if o.Exact {
		p.flags |= C.POH_AGGREGATOR_EXACT
	}
	p.path, p.path_len = cstr(&m, o.Path)
	p.fsync = C.int32_t(o.Fsync)
	p.fsync_interval_ms, p.snapshot_bytes = C.int64_t(o.FsyncIntervalMS), C.int64_t(o.SnapshotBytes)
	var h C.poh_handle
	e := newErr()
	rc := C.poh_aggregator_new(p, &h, e.p)
	return uint64(h), e.done(rc)
}

// RowError is one poh_row_error, its message resolved.
type RowError struct {
	Index                  int64
	Field, Reason, Message string
}

// Recorded is poh_record_result, with the errors result read and freed.
type Recorded struct {
	Accepted, Rejected int64
	Errors             []RowError
}

// Record is poh_record at now (partial sets POH_RECORD_PARTIAL).
func Record(h uint64, c Cols, now int64, partial bool) (Recorded, Err) {
	flags := uint32(0)
	if partial {
		flags = RecordPartial
	}
	res, errs, err := RecordFlags(h, c, now, flags)
	if err.Code != OK {
		return res, err
	}
	if errs != 0 {
		res.Errors, err = Errors(errs, 0, 0)
		Free(errs)
	}
	return res, err
}

// RecordFlags is poh_record at now with raw flags; it returns the errors
// result handle (out->errors) unread: the caller frees it.
func RecordFlags(h uint64, c Cols, now int64, flags uint32) (Recorded, uint64, Err) {
	var m mem
	defer m.free()
	o := sized[C.poh_record_options](&m)
	o.now, o.flags = C.int64_t(now), C.uint32_t(flags)
	out := sized[C.poh_record_result](&m)
	e := newErr()
	rc := C.poh_record(C.poh_handle(h), c.toC(&m), o, out, e.p)
	res := Recorded{Accepted: int64(out.accepted), Rejected: int64(out.rejected)}
	return res, uint64(out.errors), e.done(rc)
}

// RecordEvent is poh_record_event.
func RecordEvent(h uint64, token, holder string, start, end int64, hasEnd bool, weight float64, now int64) Err {
	var m mem
	defer m.free()
	t, tn := cstr(&m, token)
	ho, hn := cstr(&m, holder)
	he := C.int32_t(0)
	if hasEnd {
		he = 1
	}
	e := newErr()
	rc := C.poh_record_event(C.poh_handle(h), t, tn, ho, hn, C.int64_t(start), C.int64_t(end), he, C.double(weight),
		C.int64_t(now), e.p)
	return e.done(rc)
}

// CloseHold is poh_close_hold.
func CloseHold(h uint64, token, holder string, at, now int64) (int64, Err) {
	var m mem
	defer m.free()
	t, tn := cstr(&m, token)
	ho, hn := cstr(&m, holder)
	var n C.int64_t
	e := newErr()
	rc := C.poh_close_hold(C.poh_handle(h), t, tn, ho, hn, C.int64_t(at), C.int64_t(now), &n, e.p)
	return int64(n), e.done(rc)
}

// GC is poh_gc.
func GC(h uint64, now int64) (int64, Err) {
	var n C.int64_t
	e := newErr()
	rc := C.poh_gc(C.poh_handle(h), C.int64_t(now), &n, e.p)
	return int64(n), e.done(rc)
}

// GCSchedule is poh_gc_schedule (0 stops).
func GCSchedule(h uint64, ms int64) Err {
	e := newErr()
	return e.done(C.poh_gc_schedule(C.poh_handle(h), C.int64_t(ms), e.p))
}

// Holders is poh_holders.
func Holders(h uint64) (int64, Err) {
	var n C.int64_t
	e := newErr()
	rc := C.poh_holders(C.poh_handle(h), &n, e.p)
	return int64(n), e.done(rc)
}

// Q is poh_query_options (Window nil: no POH_QUERY_WINDOW; "" ids: no
// filter; Flags: extra raw bits).
type Q struct {
	Now, N        int64
	Window        *Window
	Token, Holder string
	Flags         uint32
}

// Stat is one row of a query result.
type Stat struct {
	HolderID                                         string
	Score                                            float64
	TotalSeconds, Events, OpenHolds, Tokens, Updated int64
}

func stat(s *C.poh_stat, id string) Stat {
	return Stat{HolderID: id, Score: float64(s.score), TotalSeconds: int64(s.total_seconds), Events: int64(s.events),
		OpenHolds: int64(s.open_holds), Tokens: int64(s.tokens), Updated: int64(s.updated_at)}
}

// Found is poh_query_result; First.HolderID is the holder asked for (a
// holder lookup) or "" (read the rows from Result). First is read as the
// library wrote it, also when Rows is 0.
type Found struct {
	Rows, IDBytes int64
	Result        uint64
	First         Stat
	FirstID       [2]int64 // id_offset, id_len of first
}

// Query is poh_query; the caller frees Result.
func Query(h uint64, q Q) (Found, Err) {
	var m mem
	defer m.free()
	p := sized[C.poh_query_options](&m)
	p.now, p.n, p.flags = C.int64_t(q.Now), C.int64_t(q.N), C.uint32_t(q.Flags)
	if q.Window != nil {
		p.flags |= C.POH_QUERY_WINDOW
		p.window.t0, p.window.t1 = C.int64_t(q.Window.T0), C.int64_t(q.Window.T1)
	}
	p.token, p.token_len = cstr(&m, q.Token)
	p.holder, p.holder_len = cstr(&m, q.Holder)
	out := sized[C.poh_query_result](&m)
	C.memset(unsafe.Pointer(&out.first), 'X', C.size_t(unsafe.Sizeof(out.first)))
	e := newErr()
	rc := C.poh_query(C.poh_handle(h), p, out, e.p)
	f := Found{Rows: int64(out.rows), IDBytes: int64(out.id_bytes), Result: uint64(out.result),
		FirstID: [2]int64{int64(out.first.id_offset), int64(out.first.id_len)}}
	if q.Holder != "" && out.rows == 1 {
		f.First = stat(&out.first, q.Holder)
	} else {
		f.First = stat(&out.first, "")
	}
	return f, e.done(rc)
}

// Rows is Query with the result read and freed: every row.
func Rows(h uint64, q Q) ([]Stat, Err) {
	f, err := Query(h, q)
	if err.Code != OK {
		return nil, err
	}
	if f.Result == 0 {
		if f.Rows == 0 {
			return []Stat{}, Err{}
		}
		return []Stat{f.First}, Err{}
	}
	defer Free(f.Result)
	return Stats(f.Result, 0, 0)
}

// MetricsText is poh_metrics_text; it returns a result handle.
func MetricsText(h uint64) (uint64, Err) {
	var r C.poh_handle
	e := newErr()
	rc := C.poh_metrics_text(C.poh_handle(h), &r, e.p)
	return uint64(r), e.done(rc)
}

// Size is poh_result_size.
func Size(r uint64) (rows, bytes int64, err Err) {
	var nr, nb C.int64_t
	e := newErr()
	rc := C.poh_result_size(C.poh_handle(r), &nr, &nb, e.p)
	return int64(nr), int64(nb), e.done(rc)
}

// Stats reads a query result through poh_result_stats, with columns of the
// sizes poh_result_size reports plus extraRows / extraBytes (negative to
// provoke POH_ERR_BUFFER_TOO_SMALL).
func Stats(r uint64, extraRows, extraBytes int64) ([]Stat, Err) {
	st, _, err := StatsExact(r, extraRows, extraBytes)
	return st, err
}

// StatsExact is Stats with each row's exact score (decimal).
func StatsExact(r uint64, extraRows, extraBytes int64) ([]Stat, []string, Err) {
	nr, nb, err := Size(r)
	if err.Code != OK {
		return nil, nil, err
	}
	var m mem
	defer m.free()
	o := sized[C.poh_stat_columns](&m)
	o.rows_cap, o.ids_cap = C.int64_t(nr+extraRows), C.int64_t(nb+extraBytes)
	n := int(nr)
	o.score = alloc[C.double](&m, n)
	o.total_seconds, o.events = alloc[C.int64_t](&m, n), alloc[C.int64_t](&m, n)
	o.open_holds, o.tokens, o.updated_at = alloc[C.int64_t](&m, n), alloc[C.int64_t](&m, n), alloc[C.int64_t](&m, n)
	o.id_offsets = alloc[C.int64_t](&m, n+1)
	o.ids = alloc[C.char](&m, int(nb))
	o.exact = alloc[C.uint8_t](&m, 48*n)
	e := newErr()
	if rc := C.poh_result_stats(C.poh_handle(r), o, e.p); rc != C.POH_OK {
		return nil, nil, e.done(rc)
	}
	e.done(C.POH_OK)
	idb := C.GoBytes(unsafe.Pointer(o.ids), C.int(nb))
	offs := unsafe.Slice(o.id_offsets, n+1)
	exact := C.GoBytes(unsafe.Pointer(o.exact), C.int(48*n))
	out := []Stat{}
	var ex []string
	for i := 0; i < n; i++ {
		out = append(out, Stat{HolderID: string(idb[offs[i]:offs[i+1]]), Score: float64(unsafe.Slice(o.score, n)[i]),
			TotalSeconds: int64(unsafe.Slice(o.total_seconds, n)[i]), Events: int64(unsafe.Slice(o.events, n)[i]),
			OpenHolds: int64(unsafe.Slice(o.open_holds, n)[i]), Tokens: int64(unsafe.Slice(o.tokens, n)[i]),
			Updated: int64(unsafe.Slice(o.updated_at, n)[i])})
		ex = append(ex, new(big.Int).SetBytes(exact[48*i:48*i+48]).String())
	}
	return out, ex, Err{}
}

// Errors reads an errors result through poh_result_errors (extra as in Stats).
func Errors(r uint64, extraRows, extraBytes int64) ([]RowError, Err) {
	nr, nb, err := Size(r)
	if err.Code != OK {
		return nil, err
	}
	var m mem
	defer m.free()
	rows := alloc[C.poh_row_error](&m, int(nr))
	text := alloc[C.char](&m, int(nb))
	e := newErr()
	if rc := C.poh_result_errors(C.poh_handle(r), rows, C.int64_t(nr+extraRows), text, C.int64_t(nb+extraBytes),
		e.p); rc != C.POH_OK {
		return nil, e.done(rc)
	}
	e.done(C.POH_OK)
	tb := C.GoBytes(unsafe.Pointer(text), C.int(nb))
	var out []RowError
	for _, x := range unsafe.Slice(rows, nr) {
		out = append(out, RowError{Index: int64(x.index), Field: C.GoString(&x.field[0]), Reason: C.GoString(&x.reason[0]),
			Message: string(tb[x.message_offset : x.message_offset+x.message_len])})
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
	var m mem
	defer m.free()
	buf := alloc[C.char](&m, int(nb+1+max(extra, 0)))
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
// against an aggregator, a query result of at least one row and a text
// result, returning each status code.
func NullCases(agg, res, txt uint64) []int {
	var m mem
	defer m.free()
	buf := alloc[C.int](&m, 64)
	n := int(C.null_cases(C.poh_handle(agg), C.poh_handle(res), C.poh_handle(txt), buf))
	out := make([]int, n)
	for i, v := range unsafe.Slice(buf, n) {
		out[i] = int(v)
	}
	return out
}

// AbsurdRows passes a row count of 2^62 with a one-element buffer.
func AbsurdRows() Err {
	e := newErr()
	return e.done(C.absurd_rows(e.p))
}

// TransferRows is poh_transfer_columns (Values decimal; Negative for delta
// rows; nil columns are NULL).
type TransferRows struct {
	Time, Block, LogIndex   []int64
	Token, From, To, Holder []string
	Values                  []string
	Negative, Removed       []uint8
}

func (t TransferRows) toC(m *mem) *C.poh_transfer_columns {
	p := sized[C.poh_transfer_columns](m)
	p.n = C.int64_t(max(len(t.Time), len(t.Values)))
	p.time = (*C.int64_t)(unsafe.Pointer(carray(m, t.Time)))
	p.block = (*C.int64_t)(unsafe.Pointer(carray(m, t.Block)))
	p.log_index = (*C.int64_t)(unsafe.Pointer(carray(m, t.LogIndex)))
	p.value = weiColumn(m, t.Values, 32)
	p.negative = (*C.uint8_t)(unsafe.Pointer(carray(m, t.Negative)))
	p.removed = (*C.uint8_t)(unsafe.Pointer(carray(m, t.Removed)))
	p.token_data, p.token_data_len, p.token_offsets = idCol(m, t.Token)
	p.from_data, p.from_data_len, p.from_offsets = idCol(m, t.From)
	p.to_data, p.to_data_len, p.to_offsets = idCol(m, t.To)
	p.holder_data, p.holder_data_len, p.holder_offsets = idCol(m, t.Holder)
	return p
}

// Hold is one row of a holds result.
type Hold struct {
	Token, Holder string
	Start, End    int64
	HasEnd        bool
	Weight        string
}

// Transfers is poh_transfers (opening may be nil); with into != 0 the holds
// are recorded there and none come back.
func Transfers(rows TransferRows, opening *TransferRows, flags uint32, openingTime int64, into uint64, now int64) ([]Hold, Err) {
	var m mem
	defer m.free()
	o := sized[C.poh_transfer_options](&m)
	o.flags, o.opening_time, o.record_into, o.now = C.uint32_t(flags), C.int64_t(openingTime), C.poh_handle(into), C.int64_t(now)
	var op *C.poh_transfer_columns
	if opening != nil {
		op = opening.toC(&m)
	}
	out := sized[C.poh_transfer_result](&m)
	e := newErr()
	if rc := C.poh_transfers(rows.toC(&m), op, o, out, e.p); rc != C.POH_OK {
		return nil, e.done(rc)
	}
	e.done(C.POH_OK)
	if out.result == 0 {
		return nil, Err{}
	}
	defer Free(uint64(out.result))
	n := int(out.rows)
	hc := sized[C.poh_hold_columns](&m)
	hc.rows_cap, hc.token_cap, hc.holder_cap = out.rows, out.token_bytes, out.holder_bytes
	hc.start, hc.end = alloc[C.int64_t](&m, n), alloc[C.int64_t](&m, n)
	hc.has_end, hc.weight = alloc[C.uint8_t](&m, n), alloc[C.uint8_t](&m, 32*n)
	hc.token, hc.holder = alloc[C.char](&m, int(out.token_bytes)), alloc[C.char](&m, int(out.holder_bytes))
	hc.token_offsets, hc.holder_offsets = alloc[C.int64_t](&m, n+1), alloc[C.int64_t](&m, n+1)
	e2 := newErr()
	if rc := C.poh_result_holds(out.result, hc, e2.p); rc != C.POH_OK {
		return nil, e2.done(rc)
	}
	e2.done(C.POH_OK)
	tok, hol := C.GoBytes(unsafe.Pointer(hc.token), C.int(out.token_bytes)), C.GoBytes(unsafe.Pointer(hc.holder), C.int(out.holder_bytes))
	to, ho := unsafe.Slice(hc.token_offsets, n+1), unsafe.Slice(hc.holder_offsets, n+1)
	w := C.GoBytes(unsafe.Pointer(hc.weight), C.int(32*n))
	var holds []Hold
	for i := 0; i < n; i++ {
		holds = append(holds, Hold{Token: string(tok[to[i]:to[i+1]]), Holder: string(hol[ho[i]:ho[i+1]]),
			Start: int64(unsafe.Slice(hc.start, n)[i]), End: int64(unsafe.Slice(hc.end, n)[i]),
			HasEnd: unsafe.Slice(hc.has_end, n)[i] != 0, Weight: new(big.Int).SetBytes(w[32*i : 32*i+32]).String()})
	}
	return holds, Err{}
}

// Airdrop is poh_airdrop of request over the holds poh_transfers makes of
// rows (none: holds 0), and the answer's text.
func Airdrop(rows *TransferRows, flags uint32, request string) (string, Err) {
	var m mem
	defer m.free()
	var holds C.poh_handle
	if rows != nil {
		o := sized[C.poh_transfer_options](&m)
		o.flags, o.now = C.uint32_t(flags), C.int64_t(-1<<63)
		out := sized[C.poh_transfer_result](&m)
		e := newErr()
		if rc := C.poh_transfers(rows.toC(&m), nil, o, out, e.p); rc != C.POH_OK {
			return "", e.done(rc)
		}
		e.done(C.POH_OK)
		holds = out.result
		defer Free(uint64(holds))
	}
	req := C.CString(request)
	defer C.free(unsafe.Pointer(req))
	var r C.poh_handle
	e := newErr()
	if rc := C.poh_airdrop(holds, req, &r, e.p); rc != C.POH_OK {
		return "", e.done(rc)
	}
	e.done(C.POH_OK)
	defer Free(uint64(r))
	return Text(uint64(r), 0)
}

// Campaign is POH_ERR_CAMPAIGN.
const Campaign = C.POH_ERR_CAMPAIGN

// Award is one allocation row.
type Award struct {
	Share  int64
	Amount string
}

// Allocate is poh_allocate of shares (Scores float, or Exact decimal) over
// pool (decimal), with cap ("" none) and minScore.
func Allocate(ids []string, scores []float64, exact []string, pool, cap string, minScore float64) ([]Award, Err) {
	var m mem
	defer m.free()
	s := sized[C.poh_share_columns](&m)
	s.n = C.int64_t(len(ids))
	s.ids, s.ids_len, s.id_offsets = idCol(&m, ids)
	s.score = (*C.double)(unsafe.Pointer(carray(&m, scores)))
	if exact != nil {
		s.exact = weiColumn(&m, exact, 48)
	}
	o := sized[C.poh_allocate_options](&m)
	b, _ := new(big.Int).SetString(pool, 10)
	b.FillBytes(unsafe.Slice((*byte)(unsafe.Pointer(&o.pool[0])), 48))
	if cap != "" {
		o.flags = C.POH_ALLOCATE_CAP
		c, _ := new(big.Int).SetString(cap, 10)
		c.FillBytes(unsafe.Slice((*byte)(unsafe.Pointer(&o.cap[0])), 48))
	}
	o.min_score = C.double(minScore)
	var r C.poh_handle
	e := newErr()
	if rc := C.poh_allocate(s, o, &r, e.p); rc != C.POH_OK {
		return nil, e.done(rc)
	}
	e.done(C.POH_OK)
	defer Free(uint64(r))
	nr, _, _ := Size(uint64(r))
	ac := sized[C.poh_award_columns](&m)
	ac.rows_cap = C.int64_t(nr)
	ac.share, ac.amount = alloc[C.int64_t](&m, int(nr)), alloc[C.uint8_t](&m, 48*int(nr))
	e2 := newErr()
	if rc := C.poh_result_awards(r, ac, e2.p); rc != C.POH_OK {
		return nil, e2.done(rc)
	}
	e2.done(C.POH_OK)
	amt := C.GoBytes(unsafe.Pointer(ac.amount), C.int(48*nr))
	var out []Award
	for i := 0; i < int(nr); i++ {
		out = append(out, Award{Share: int64(unsafe.Slice(ac.share, nr)[i]), Amount: new(big.Int).SetBytes(amt[48*i : 48*i+48]).String()})
	}
	return out, Err{}
}

// AllocateRaw is poh_allocate of exact scores in a raw layout (shareFlags:
// POH_SHARES_*), its awards read in another (awardFlags: POH_AWARDS_*,
// width bytes per amount): each award's share index and its raw amount.
func AllocateRaw(ids []string, exact []byte, shareFlags uint32, pool string, awardFlags uint32,
	width int) ([]int64, []byte, Err) {
	var m mem
	defer m.free()
	s := sized[C.poh_share_columns](&m)
	s.n, s.flags = C.int64_t(len(ids)), C.uint32_t(shareFlags)
	s.ids, s.ids_len, s.id_offsets = idCol(&m, ids)
	s.exact = (*C.uint8_t)(unsafe.Pointer(carray(&m, exact)))
	o := sized[C.poh_allocate_options](&m)
	b, _ := new(big.Int).SetString(pool, 10)
	b.FillBytes(unsafe.Slice((*byte)(unsafe.Pointer(&o.pool[0])), 48))
	var r C.poh_handle
	e := newErr()
	if rc := C.poh_allocate(s, o, &r, e.p); rc != C.POH_OK {
		return nil, nil, e.done(rc)
	}
	e.done(C.POH_OK)
	defer Free(uint64(r))
	nr, _, _ := Size(uint64(r))
	ac := sized[C.poh_award_columns](&m)
	ac.rows_cap, ac.flags = C.int64_t(nr), C.uint32_t(awardFlags)
	ac.share, ac.amount = alloc[C.int64_t](&m, int(nr)), alloc[C.uint8_t](&m, width*int(nr))
	e2 := newErr()
	if rc := C.poh_result_awards(r, ac, e2.p); rc != C.POH_OK {
		return nil, nil, e2.done(rc)
	}
	e2.done(C.POH_OK)
	shares := make([]int64, nr)
	for i, v := range unsafe.Slice(ac.share, nr) {
		shares[i] = int64(v)
	}
	return shares, C.GoBytes(unsafe.Pointer(ac.amount), C.int(width*int(nr))), Err{}
}

// GroupOpts is poh_group_options (Window nil: no POH_GROUP_WINDOW; Flags:
// extra raw bits).
type GroupOpts struct {
	Now, N, Threads int64
	Window          *Window
	TWAB, Exact     bool
	ByToken         bool
	Flags           uint32
}

// Grouped is poh_score_by_holder's result, read and freed: the rows, each
// row's token (by token; "" otherwise) and exact score (decimal), and the
// sizes poh_group_result reported.
type Grouped struct {
	Rows                       []Stat
	Tokens, Exact              []string
	NRows, IDBytes, TokenBytes int64
}

// ScoreByHolder is poh_score_by_holder with its result read through
// poh_result_stats (token columns too) and freed.
func ScoreByHolder(c Cols, o GroupOpts) (Grouped, Err) {
	var m mem
	defer m.free()
	p := sized[C.poh_group_options](&m)
	p.now, p.n, p.threads, p.flags = C.int64_t(o.Now), C.int64_t(o.N), C.int64_t(o.Threads), C.uint32_t(o.Flags)
	if o.Window != nil {
		p.flags |= C.POH_GROUP_WINDOW
		p.window.t0, p.window.t1 = C.int64_t(o.Window.T0), C.int64_t(o.Window.T1)
	}
	if o.TWAB {
		p.flags |= C.POH_GROUP_TWAB
	}
	if o.Exact {
		p.flags |= C.POH_GROUP_EXACT
	}
	if o.ByToken {
		p.flags |= C.POH_GROUP_BY_TOKEN
	}
	out := sized[C.poh_group_result](&m)
	e := newErr()
	if rc := C.poh_score_by_holder(c.toC(&m), p, out, e.p); rc != C.POH_OK {
		return Grouped{}, e.done(rc)
	}
	e.done(C.POH_OK)
	r := uint64(out.result)
	defer Free(r)
	g := Grouped{NRows: int64(out.rows), IDBytes: int64(out.id_bytes), TokenBytes: int64(out.token_bytes)}
	rows, exact, err := StatsExact(r, 0, 0)
	if err.Code != OK {
		return g, err
	}
	g.Rows, g.Exact = rows, exact
	// the token columns, in a second read of the same result
	n := int(out.rows)
	o2 := sized[C.poh_stat_columns](&m)
	o2.rows_cap, o2.token_ids_cap = C.int64_t(n), out.token_bytes
	o2.token_offsets = alloc[C.int64_t](&m, n+1)
	o2.token_ids = alloc[C.char](&m, int(out.token_bytes))
	e = newErr()
	if rc := C.poh_result_stats(C.poh_handle(r), o2, e.p); rc != C.POH_OK {
		return g, e.done(rc)
	}
	e.done(C.POH_OK)
	tb := C.GoBytes(unsafe.Pointer(o2.token_ids), C.int(out.token_bytes))
	offs := unsafe.Slice(o2.token_offsets, n+1)
	for i := 0; i < n; i++ {
		g.Tokens = append(g.Tokens, string(tb[offs[i]:offs[i+1]]))
	}
	return g, Err{}
}
