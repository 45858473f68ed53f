package main

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

// TestMain checks that the tests, together, leave no handle behind
// (leakCheck checks each test on its own).
func TestMain(m *testing.M) {
	start := capitest.LiveHandles()
	code := m.Run()
	if n := capitest.LiveHandles(); code == 0 && n != start {
		println("capi: handles left behind:", n-start)
		code = 1
	}
	os.Exit(code)
}

// leakCheck fails t unless poh_live_handles is back to its value at the
// call once every cleanup has run. Call it first in a test: cleanups run
// last-registered first, so this one runs after newAgg's.
func leakCheck(t *testing.T) {
	t.Helper()
	start := capitest.LiveHandles()
	t.Cleanup(func() {
		if n := capitest.LiveHandles(); n != start {
			t.Errorf("%d live handles after the test, %d before it", n, start)
		}
	})
}

func wantCode(t *testing.T, what string, got capitest.Err, code int) {
	t.Helper()
	if got.Code != code {
		t.Fatalf("%s: status %d (%q), want %d", what, got.Code, got.Message, code)
	}
	if code != capitest.OK && got.Message == "" {
		t.Fatalf("%s: status %d with an empty message", what, got.Code)
	}
}

// newAgg is an in-memory aggregator freed when the test ends.
func newAgg(t *testing.T, o capitest.Options) uint64 {
	t.Helper()
	h, err := capitest.New(o)
	wantCode(t, "new", err, capitest.OK)
	if h == 0 {
		t.Fatal("new: zero handle")
	}
	t.Cleanup(func() { capitest.Free(h) })
	return h
}

// record records c strictly at now and checks that every row went in.
func record(t *testing.T, h uint64, c capitest.Cols, now int64) {
	t.Helper()
	res, err := capitest.Record(h, c, now, false)
	wantCode(t, "record", err, capitest.OK)
	if res.Accepted != int64(len(c.Start)) || res.Rejected != 0 || res.Errors != nil {
		t.Fatalf("record: %+v, want %d accepted", res, len(c.Start))
	}
}

// rows is every row at now (the full ranking).
func rows(t *testing.T, h uint64, now int64) []capitest.Stat {
	t.Helper()
	rs, err := capitest.Rows(h, capitest.Q{Now: now})
	wantCode(t, "query", err, capitest.OK)
	return rs
}

type vector struct {
	Name   string `json:"name"`
	Now    int64  `json:"now"`
	Events []struct {
		Token     string          `json:"token_id"`
		Holder    string          `json:"holder_id"`
		TokenHex  string          `json:"token_id_hex"`
		HolderHex string          `json:"holder_id_hex"`
		Start     int64           `json:"start"`
		End       *int64          `json:"end"`
		Weight    json.RawMessage `json:"weight"`
	} `json:"events"`
	Score *float64 `json:"score"`
	Error *struct {
		Index  int64  `json:"index"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"error"`
}

func loadVectors(t *testing.T) []vector {
	b, err := os.ReadFile("../testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Vectors []vector }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return doc.Vectors
}

func (v vector) columns(t *testing.T) capitest.Cols {
	var c capitest.Cols
	c.Tokens, c.Holders = []string{}, []string{}
	for _, e := range v.Events {
		tok, hol := e.Token, e.Holder
		if e.TokenHex != "" {
			b, _ := hex.DecodeString(e.TokenHex)
			tok = string(b)
		}
		if e.HolderHex != "" {
			b, _ := hex.DecodeString(e.HolderHex)
			hol = string(b)
		}
		c.Tokens, c.Holders = append(c.Tokens, tok), append(c.Holders, hol)
		c.Start = append(c.Start, e.Start)
		if e.End != nil {
			c.End, c.HasEnd = append(c.End, *e.End), append(c.HasEnd, 1)
		} else {
			c.End, c.HasEnd = append(c.End, 0), append(c.HasEnd, 0)
		}
		w := 1.0
		switch s := string(e.Weight); s {
		case "":
		case `"nan"`:
			w = math.NaN()
		case `"inf"`:
			w = math.Inf(1)
		case `"-inf"`:
			w = math.Inf(-1)
		default:
			if err := json.Unmarshal(e.Weight, &w); err != nil {
				t.Fatal(err)
			}
		}
		c.Weight = append(c.Weight, w)
	}
	return c
}

// packedRows is c in the packed rows layout (no ids; end -1 = open).
func packedRows(c capitest.Cols) []capitest.Event {
	out := []capitest.Event{}
	for i := range c.Start {
		end := c.End[i]
		if c.HasEnd[i] == 0 {
			end = -1
		}
		out = append(out, capitest.Event{Start: c.Start[i], End: end, Weight: c.Weight[i]})
	}
	return out
}

// byHolder splits c into one batch per holder (ids kept).
func byHolder(c capitest.Cols) map[string]capitest.Cols {
	out := map[string]capitest.Cols{}
	for i, hol := range c.Holders {
		s := out[hol]
		s.Start, s.End = append(s.Start, c.Start[i]), append(s.End, c.End[i])
		s.HasEnd, s.Weight = append(s.HasEnd, c.HasEnd[i]), append(s.Weight, c.Weight[i])
		s.Tokens, s.Holders = append(s.Tokens, c.Tokens[i]), append(s.Holders, hol)
		out[hol] = s
	}
	return out
}

func closeTo(got, want float64) bool {
	return got == want || math.Abs(got-want) <= 1e-9*math.Abs(want)
}

// maxTime is the largest valid time (the header's 253402300799).
const maxTime = 253402300799

// TestVectors runs the shared vectors through poh_score (columns, and packed
// rows for the valid ones) and, for the valid ones, through an aggregator
// recorded at now 1: each holder's row is the score of its events, at the
// vector's now and later (a closed hold ending after the write grows like an
// open one, so no clipping is needed).
func TestVectors(t *testing.T) {
	leakCheck(t)
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			leakCheck(t)
			c := v.columns(t)
			got, err := capitest.Score(c, capitest.ScoreOpts{Now: v.Now})
			if v.Error != nil {
				wantCode(t, "score", err, capitest.InvalidEvent)
				if err.Index != v.Error.Index || err.Field != v.Error.Field || err.Reason != v.Error.Reason {
					t.Fatalf("error %+v, want %+v", err, *v.Error)
				}
				return
			}
			wantCode(t, "score", err, capitest.OK)
			sameBits(t, "score", got, *v.Score)
			got, err = capitest.Score(capitest.Cols{Rows: packedRows(c)}, capitest.ScoreOpts{Now: v.Now})
			wantCode(t, "score packed", err, capitest.OK)
			sameBits(t, "score packed", got, *v.Score)

			const recorded = 1
			if v.Now < recorded {
				t.Fatalf("now %d is before the record time %d", v.Now, recorded)
			}
			h := newAgg(t, capitest.Options{})
			if len(c.Start) > 0 {
				record(t, h, c, recorded)
			}
			groups := byHolder(c)
			for _, now := range []int64{v.Now, min(v.Now+1000, maxTime)} {
				rs := rows(t, h, now)
				if len(rs) != len(groups) {
					t.Fatalf("now %d: %d rows, want %d holders", now, len(rs), len(groups))
				}
				sum := 0.0
				for _, row := range rs {
					sum += row.Score
					want, err := capitest.Score(groups[row.HolderID], capitest.ScoreOpts{Now: now})
					wantCode(t, "score of "+row.HolderID, err, capitest.OK)
					if !closeTo(row.Score, want) {
						t.Errorf("now %d: holder %q scores %v, its events %v", now, row.HolderID, row.Score, want)
					}
				}
				if now == v.Now && !closeTo(sum, *v.Score) {
					t.Fatalf("aggregator total %v, want %v", sum, *v.Score)
				}
			}
		})
	}
}

// evs builds packed events from {start, end, weight} triples.
func evs(rows ...[3]float64) []capitest.Event {
	out := make([]capitest.Event, len(rows))
	for i, r := range rows {
		out[i] = capitest.Event{Start: int64(r[0]), End: int64(r[1]), Weight: r[2]}
	}
	return out
}

// TestScorePackedRows: poh_columns.rows, the layout of ready-made events.
func TestScorePackedRows(t *testing.T) {
	leakCheck(t)
	readme := evs([3]float64{0, 10, 2}, [3]float64{50, -1, 1}, [3]float64{90, 150, 1}, [3]float64{120, -1, 3})
	got, err := capitest.Score(capitest.Cols{Rows: readme}, capitest.ScoreOpts{Now: 100})
	wantCode(t, "score rows", err, capitest.OK)
	if got != 80 {
		t.Fatalf("score %v, want 80 (README example)", got)
	}
	_, err = capitest.Score(capitest.Cols{Rows: evs([3]float64{0, 10, 2}, [3]float64{10, 5, 1})}, capitest.ScoreOpts{Now: 100})
	wantCode(t, "score rows", err, capitest.InvalidEvent)
	if err.Index != 1 || err.Field != "end" || err.Reason != "end_before_start" ||
		err.Message != "event 1: end 5: is before start 10" {
		t.Fatalf("error %+v", err)
	}
	if s, err := capitest.Score(capitest.Cols{Rows: []capitest.Event{}}, capitest.ScoreOpts{Now: 100}); err.Code != capitest.OK || s != 0 {
		t.Fatalf("empty: %v %+v", s, err)
	}
	if s, err := capitest.Score(capitest.Cols{Rows: evs([3]float64{0, -1, 1})}, capitest.ScoreOpts{Now: capitest.Now}); err.Code != capitest.OK || s < 1.7e9 {
		t.Fatalf("POH_NOW: %v %+v", s, err)
	}
}

func TestColumnsShapeErrors(t *testing.T) {
	leakCheck(t)
	for name, c := range map[string]capitest.Cols{
		"has_end without end": {Start: []int64{1}, HasEnd: []uint8{1}},
		"ids of one column":   {Start: []int64{1}, Tokens: []string{"T"}, Holders: []string{}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := capitest.Score(c, capitest.ScoreOpts{Now: 10})
			if err.Code == capitest.OK {
				t.Fatal("accepted")
			}
		})
	}
	_, err := capitest.Score(capitest.Cols{Start: []int64{1}, Rows: evs([3]float64{0, 1, 1})}, capitest.ScoreOpts{Now: 10})
	wantCode(t, "rows and columns both", err, capitest.InvalidArgument)

	h := newAgg(t, capitest.Options{})
	for name, c := range map[string]capitest.Cols{
		"columns without ids": {Start: []int64{1}},
		"packed rows":         {Rows: evs([3]float64{0, 1, 1})},
	} {
		res, err := capitest.Record(h, c, 10, false)
		wantError(t, "record "+name, err, -1, "token_id", "empty")
		if res.Accepted != 0 {
			t.Fatalf("record %s: accepted %d", name, res.Accepted)
		}
	}
	if n, _ := capitest.Holders(h); n != 0 {
		t.Fatalf("%d holders after refused batches", n)
	}
}

func TestBadHandles(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{TTLSeconds: 10})
	f, err := capitest.Query(h, capitest.Q{Now: 10})
	wantCode(t, "query", err, capitest.OK)
	r := f.Result
	wantCode(t, "free result", capitest.Free(r), capitest.OK)
	dead, _ := capitest.New(capitest.Options{})
	wantCode(t, "free", capitest.Free(dead), capitest.OK)
	txt, err := capitest.MetricsText(h)
	wantCode(t, "metrics", err, capitest.OK)
	defer capitest.Free(txt)
	one := capitest.Cols{Start: []int64{0}, End: []int64{1}, Tokens: []string{"T"}, Holders: []string{"a"}}
	for _, bad := range []uint64{0, 1 << 60, dead, r, txt} {
		wantCode(t, "record_event", capitest.RecordEvent(bad, "T", "a", 0, 1, true, 1, 10), capitest.BadHandle)
		_, err := capitest.Record(bad, one, 10, false)
		wantCode(t, "record", err, capitest.BadHandle)
		_, err = capitest.Record(bad, one, 10, true)
		wantCode(t, "record partial", err, capitest.BadHandle)
		_, err = capitest.CloseHold(bad, "T", "a", 5, 10)
		wantCode(t, "close_hold", err, capitest.BadHandle)
		_, err = capitest.GC(bad, 10)
		wantCode(t, "gc", err, capitest.BadHandle)
		wantCode(t, "gc_schedule", capitest.GCSchedule(bad, 10), capitest.BadHandle)
		wantCode(t, "gc_schedule 0", capitest.GCSchedule(bad, 0), capitest.BadHandle)
		_, err = capitest.Holders(bad)
		wantCode(t, "holders", err, capitest.BadHandle)
		_, err = capitest.Query(bad, capitest.Q{Now: 10})
		wantCode(t, "query", err, capitest.BadHandle)
		_, err = capitest.Query(bad, capitest.Q{Now: 10, N: 1, Token: "T"})
		wantCode(t, "query top-n", err, capitest.BadHandle)
		_, err = capitest.Query(bad, capitest.Q{Now: 10, Holder: "a"})
		wantCode(t, "query holder", err, capitest.BadHandle)
		_, err = capitest.MetricsText(bad)
		wantCode(t, "metrics", err, capitest.BadHandle)
		if bad == txt {
			continue // a live text result: the result calls below take it
		}
		_, _, err = capitest.Size(bad)
		wantCode(t, "size", err, capitest.BadHandle)
		wantCode(t, "free", capitest.Free(bad), capitest.BadHandle)
	}
	// Wrong kinds: an aggregator is not a result, and each result kind is
	// read by its own call only.
	_, err = capitest.Stats(h, 0, 0)
	wantCode(t, "stats of aggregator", err, capitest.BadHandle)
	_, err = capitest.Stats(txt, 0, 0)
	wantCode(t, "stats of text", err, capitest.BadHandle)
	_, err = capitest.Errors(txt, 0, 0)
	wantCode(t, "errors of text", err, capitest.BadHandle)
	res, errs, err := capitest.RecordFlags(h, capitest.Cols{Start: []int64{5}, End: []int64{1},
		Tokens: []string{"T"}, Holders: []string{"a"}}, 10, capitest.RecordPartial)
	wantCode(t, "partial", err, capitest.OK)
	if res.Rejected != 1 || errs == 0 {
		t.Fatalf("partial: %+v, errors handle %d", res, errs)
	}
	defer capitest.Free(errs)
	_, err = capitest.Stats(errs, 0, 0)
	wantCode(t, "stats of errors", err, capitest.BadHandle)
	_, err = capitest.Text(errs, 0)
	wantCode(t, "text of errors", err, capitest.BadHandle)
	f, err = capitest.Query(h, capitest.Q{Now: 10})
	wantCode(t, "query", err, capitest.OK)
	defer capitest.Free(f.Result)
	_, err = capitest.Text(f.Result, 0)
	wantCode(t, "text of stats", err, capitest.BadHandle)
	_, err = capitest.Errors(f.Result, 0, 0)
	wantCode(t, "errors of stats", err, capitest.BadHandle)
	wantCode(t, "gc_schedule on result", capitest.GCSchedule(f.Result, 10), capitest.BadHandle)
}

// TestNullPointersAndNegativeLengths: each case of the driver's null_cases
// passes NULL where data is required, or a negative length: the header
// promises POH_ERR_INVALID_ARGUMENT for every one (POH_ERR_BAD_HANDLE for
// poh_free(0)), never a crash.
func TestNullPointersAndNegativeLengths(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{})
	wantCode(t, "record", capitest.RecordEvent(h, "T", "a", 0, 1, true, 1, 10), capitest.OK)
	f, err := capitest.Query(h, capitest.Q{Now: 10})
	wantCode(t, "query", err, capitest.OK)
	defer capitest.Free(f.Result)
	if f.Rows != 1 {
		t.Fatalf("query: %d rows, want 1 (poh_result_stats with NULL rows needs one)", f.Rows)
	}
	txt, err := capitest.MetricsText(h)
	wantCode(t, "metrics", err, capitest.OK)
	defer capitest.Free(txt)
	before, _ := capitest.Holders(h)
	codes := capitest.NullCases(h, f.Result, txt)
	// null_cases' calls, in its order.
	cases := []string{
		"poh_score(NULL cols)", "poh_score(NULL out)", "poh_score(n -1)", "poh_score(start NULL, n 3)",
		"poh_aggregator_new(NULL out)", "poh_record_event(token NULL, len 3)", "poh_record_event(token len -1)",
		"poh_record(NULL cols)", "poh_record(partial, NULL out)", "poh_close_hold(holder NULL, len 4)",
		"poh_query(NULL out)", "poh_query(token NULL, len 2)", "poh_query(holder len -1)",
		"poh_metrics_text(NULL result)", "poh_holders(NULL holders)", "poh_result_stats(NULL out)",
		"poh_transfers(NULL)", "poh_allocate(NULL)", "poh_airdrop(NULL request)",
		"poh_result_text(NULL buf)", "poh_version(NULL buf)", "poh_gc_schedule(-1)",
		"poh_aggregator_new(ttl -1)", "poh_aggregator_new(path NULL, len 6)", "poh_aggregator_new(path len -1)",
		"poh_free(0, NULL err)",
	}
	if len(codes) != len(cases) {
		t.Fatalf("%d cases ran, want %d", len(codes), len(cases))
	}
	for i, c := range codes {
		want := capitest.InvalidArgument
		if i == len(cases)-1 {
			want = capitest.BadHandle // freeing 0 is a bad handle, with or without err
		}
		if c != want {
			t.Errorf("case %d, %s: status %d, want %d", i, cases[i], c, want)
		}
	}
	if after, _ := capitest.Holders(h); after != before {
		t.Errorf("holders %d after the NULL cases, %d before", after, before)
	}
}

func TestAbsurdLength(t *testing.T) {
	leakCheck(t)
	wantCode(t, "absurd rows", capitest.AbsurdRows(), capitest.InvalidArgument)
}

// TestPanicIsRecovered: the handler every export defers turns a panic into
// POH_ERR_INTERNAL.
func TestPanicIsRecovered(t *testing.T) {
	rc := fail(nil, errBadHandle)
	func() {
		defer recoverInto(nil, &rc)
		var m map[string]int
		m["boom"]++ // a nil-map write: a runtime panic
	}()
	if rc != statusInternal {
		t.Fatalf("status %d, want POH_ERR_INTERNAL", rc)
	}
}

func TestVersion(t *testing.T) {
	leakCheck(t)
	v, err := capitest.Version(16)
	wantCode(t, "version", err, capitest.OK)
	if v != versionString() || !strings.HasPrefix(v, "0.2.") {
		t.Fatalf("version %q, want %q (0.2.x)", v, versionString())
	}
	hdr, rerr := os.ReadFile("poh_holdmetrics.h")
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !strings.Contains(string(hdr), `("`+v+`")`) {
		t.Errorf("the header does not document version %q", v)
	}
	_, err = capitest.Version(len(v))
	wantCode(t, "short buffer", err, capitest.BufferTooSmall)
}

// TestVersionedStructs: the library reads only the size the caller set, so
// an older caller's smaller struct works (its missing fields take their
// zero defaults), a newer caller's bigger one works while its extra bytes
// are zero, and a non-zero extra byte (a field this library does not know)
// or a size below the 8-byte header is POH_ERR_INVALID_ARGUMENT.
// ScoreSized scores [0, 10) with now 5 set in the struct.
func TestVersionedStructs(t *testing.T) {
	leakCheck(t)
	ours := capitest.ScoreOptionsSize
	for _, c := range []struct {
		name  string
		size  uint32
		extra byte
		code  int
		score float64
	}{
		{"this header's size", ours, 0, capitest.OK, 5},
		{"byte past size is not read", ours, 0xff, capitest.OK, 5},
		{"older: stops before the window", 16, 0, capitest.OK, 5},
		{"older, byte past its size", 16, 1, capitest.OK, 5},
		{"oldest: no now, so now 0", 8, 0, capitest.OK, 0},
		{"newer, extra bytes zero", ours + 16, 0, capitest.OK, 5},
		{"newer, an extra byte set", ours + 16, 1, capitest.InvalidArgument, 0},
		{"newer by 4, its byte set", ours + 4, 0x80, capitest.InvalidArgument, 0},
		{"size 7", 7, 0, capitest.InvalidArgument, 0},
		{"size 4", 4, 0, capitest.InvalidArgument, 0},
		{"size 0", 0, 0, capitest.InvalidArgument, 0},
	} {
		got, err := capitest.ScoreSized(c.size, c.extra)
		wantCode(t, c.name, err, c.code)
		if c.code == capitest.OK && got != c.score {
			t.Errorf("%s: score %v, want %v", c.name, got, c.score)
		}
		if c.code == capitest.InvalidArgument && !strings.Contains(err.Message, "poh_score_options") {
			t.Errorf("%s: message %q does not name the struct", c.name, err.Message)
		}
	}
	if ours < 32 {
		t.Fatalf("sizeof(poh_score_options) = %d: the window fields are missing", ours)
	}
}

// TestUnknownFlags: a flag bit this library does not know is
// POH_ERR_INVALID_ARGUMENT in every options struct, and nothing happens.
func TestUnknownFlags(t *testing.T) {
	leakCheck(t)
	c := capitest.Cols{Start: []int64{0}, End: []int64{10}, HasEnd: []uint8{1}, Weight: []float64{1},
		Tokens: []string{"T"}, Holders: []string{"a"}}
	for _, bit := range []uint32{16, 1 << 31} { // 8 is POH_SCORE_CONTINUE
		_, err := capitest.Score(c, capitest.ScoreOpts{Now: 100, Flags: bit})
		wantCode(t, "score flag", err, capitest.InvalidArgument)
		h, err := capitest.New(capitest.Options{Flags: bit})
		wantCode(t, "aggregator flag", err, capitest.InvalidArgument)
		if h != 0 {
			capitest.Free(h)
			t.Fatal("a handle despite an unknown flag")
		}
	}
	// TWAB needs a window.
	_, err := capitest.Score(c, capitest.ScoreOpts{Now: 100, TWAB: true})
	wantCode(t, "twab without window", err, capitest.InvalidArgument)

	h := newAgg(t, capitest.Options{History: true})
	for _, flags := range []uint32{4, 1 << 31, capitest.RecordPartial | 4,
		capitest.RecordPartial | capitest.RecordCheck} {
		res, errs, err := capitest.RecordFlags(h, c, 100, flags)
		wantCode(t, "record flags", err, capitest.InvalidArgument)
		if res.Accepted != 0 || errs != 0 {
			t.Fatalf("record flags %#x: %+v, errors %d", flags, res, errs)
		}
	}
	if n, _ := capitest.Holders(h); n != 0 {
		t.Fatalf("%d holders after refused records", n)
	}
	record(t, h, c, 100)
	for _, bit := range []uint32{4, 1 << 31} { // 2 is POH_QUERY_UNORDERED
		f, err := capitest.Query(h, capitest.Q{Now: 100, Flags: bit})
		wantCode(t, "query flag", err, capitest.InvalidArgument)
		if f.Result != 0 {
			capitest.Free(f.Result)
			t.Fatal("a result despite an unknown flag")
		}
	}
}

func TestAggregatorLifecycle(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{TTLSeconds: 50})
	wantCode(t, "record", capitest.RecordEvent(h, "T", "alice", 0, 10, true, 2, 100), capitest.OK)
	wantCode(t, "record open", capitest.RecordEvent(h, "T", "bob", 50, 0, false, 1, 100), capitest.OK)
	err := capitest.RecordEvent(h, "T", "bob", 10, 5, true, 1, 100)
	wantError(t, "bad record", err, 0, "end", "end_before_start")
	res, err := capitest.Record(h, capitest.Cols{
		Start: []int64{90, 5, 120}, End: []int64{150, 1, 0}, HasEnd: []uint8{1, 1, 0},
		Weight: []float64{1, 1, 3}, Tokens: []string{"T", "T", "U"}, Holders: []string{"bob", "dave", "carol"},
	}, 100, true)
	wantCode(t, "partial", err, capitest.OK)
	if res.Accepted != 2 || res.Rejected != 1 || len(res.Errors) != 1 || res.Errors[0].Index != 1 ||
		res.Errors[0].Field != "end" || res.Errors[0].Reason != "end_before_start" {
		t.Fatalf("partial: %+v", res)
	}

	f, err := capitest.Query(h, capitest.Q{Now: 100})
	wantCode(t, "query", err, capitest.OK)
	got, err := capitest.Stats(f.Result, 0, 0)
	wantCode(t, "stats", err, capitest.OK)
	_, err = capitest.Stats(f.Result, -1, 0)
	wantCode(t, "short rows", err, capitest.BufferTooSmall)
	_, err = capitest.Stats(f.Result, 0, -1)
	wantCode(t, "short ids", err, capitest.BufferTooSmall)
	capitest.Free(f.Result)
	// bob's [90, 150), recorded at 100, counts up to now like an open hold:
	// 50 (open from 50) + 10.
	want := []capitest.Stat{
		{HolderID: "bob", Score: 60, TotalSeconds: 60, Events: 2, OpenHolds: 1, Tokens: 1, Updated: 100},
		{HolderID: "alice", Score: 20, TotalSeconds: 10, Events: 1, OpenHolds: 0, Tokens: 1, Updated: 100},
		{HolderID: "carol", Score: 0, TotalSeconds: 0, Events: 1, OpenHolds: 1, Tokens: 1, Updated: 100},
	}
	if len(got) != len(want) || f.Rows != int64(len(want)) || f.IDBytes != 13 {
		t.Fatalf("rows %+v (found %+v)", got, f)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	top, err := capitest.Rows(h, capitest.Q{Now: 200, N: 1, Token: "U"})
	wantCode(t, "top-n", err, capitest.OK)
	if len(top) != 1 || top[0].HolderID != "carol" || top[0].Score != 240 {
		t.Fatalf("top-n U: %+v", top)
	}
	_, err = capitest.Query(h, capitest.Q{Now: 200, N: -1})
	wantError(t, "n -1", err, -1, "n", "out_of_range")

	closed, err := capitest.CloseHold(h, "T", "bob", 120, 120)
	wantCode(t, "close", err, capitest.OK)
	if closed != 1 {
		t.Fatalf("closed %d", closed)
	}
	_, err = capitest.CloseHold(h, "T", "bob", 130, 130)
	wantCode(t, "close again", err, capitest.NoOpenHold)
	_, err = capitest.CloseHold(h, "U", "carol", 10, 130)
	wantError(t, "close before start", err, -1, "at", "end_before_start")

	// TTL 50: at 171 alice (updated 100) and bob (closed at 120, his
	// [90, 150) over) are idle > 50 and hold nothing live; carol still holds.
	dropped, err := capitest.GC(h, 171)
	wantCode(t, "gc", err, capitest.OK)
	if dropped != 2 {
		t.Fatalf("dropped %d", dropped)
	}
	if n, _ := capitest.Holders(h); n != 1 {
		t.Fatalf("holders %d", n)
	}

	m, err := capitest.MetricsText(h)
	wantCode(t, "metrics", err, capitest.OK)
	txt, err := capitest.Text(m, 0)
	wantCode(t, "text", err, capitest.OK)
	_, err = capitest.Text(m, -1)
	wantCode(t, "short text", err, capitest.BufferTooSmall)
	if rows, bytes, err := capitest.Size(m); err.Code != capitest.OK || rows != 0 || bytes != int64(len(txt)) {
		t.Fatalf("size of text: %d rows %d bytes (%+v), want 0 and %d", rows, bytes, err, len(txt))
	}
	capitest.Free(m)
	for _, s := range []string{`poh_hold_events_total{result="accepted"} 4`, `poh_hold_events_total{result="rejected"} 2`,
		"poh_gc_evictions_total 2", "poh_holders 1", "poh_open_holds 1"} {
		if !strings.Contains(txt, s) {
			t.Errorf("metrics text lacks %q:\n%s", s, txt)
		}
	}

	wantCode(t, "stop gc when none runs", capitest.GCSchedule(h, 0), capitest.OK)
	wantCode(t, "schedule gc", capitest.GCSchedule(h, 10), capitest.OK)
	wantCode(t, "schedule gc twice", capitest.GCSchedule(h, 10), capitest.State)
	wantCode(t, "stop gc", capitest.GCSchedule(h, 0), capitest.OK)
	wantCode(t, "schedule gc again", capitest.GCSchedule(h, 10), capitest.OK)
	// poh_free stops the running GC.
	wantCode(t, "free", capitest.Free(h), capitest.OK)
	wantCode(t, "use after free", capitest.RecordEvent(h, "T", "a", 0, 1, true, 1, 10), capitest.BadHandle)

	noTTL := newAgg(t, capitest.Options{})
	wantCode(t, "gc without ttl", capitest.GCSchedule(noTTL, 10), capitest.State)
	if n, err := capitest.GC(noTTL, 10); err.Code != capitest.OK || n != 0 {
		t.Fatalf("poh_gc without ttl: %d, %+v", n, err)
	}
}

// TestClosedHoldEndingAfterRecordGrows: a closed hold whose end is after the
// write's now is not credited in full at once; its row grows like an open
// hold's until its end, and equals poh_score of the hold at every now at or
// after the write. A holder holding such a hold is not collected by GC.
func TestClosedHoldEndingAfterRecordGrows(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{TTLSeconds: 5})
	c := capitest.Cols{Start: []int64{90}, End: []int64{150}, HasEnd: []uint8{1}, Weight: []float64{2},
		Tokens: []string{"T"}, Holders: []string{"a"}}
	record(t, h, c, 100)
	for _, now := range []int64{100, 120, 149, 150, 151, 400} {
		want, err := capitest.Score(c, capitest.ScoreOpts{Now: now})
		wantCode(t, "score", err, capitest.OK)
		f, err := capitest.Query(h, capitest.Q{Now: now, Holder: "a"})
		wantCode(t, "query", err, capitest.OK)
		secs := min(now, 150) - 90
		if f.Rows != 1 || f.First.Score != want || f.First.Score != float64(2*secs) || f.First.TotalSeconds != secs ||
			f.First.OpenHolds != 0 {
			t.Errorf("now %d: %+v, want score %v (poh_score %v), %d s", now, f.First, 2*secs, want, secs)
		}
	}
	// At 120 the hold is still live (idle 20 > TTL 5, but it holds): kept.
	if n, err := capitest.GC(h, 120); err.Code != capitest.OK || n != 0 {
		t.Fatalf("gc at 120: dropped %d (%+v), want 0", n, err)
	}
	if n, err := capitest.GC(h, 200); err.Code != capitest.OK || n != 1 {
		t.Fatalf("gc at 200: dropped %d (%+v), want 1", n, err)
	}
}

// TestConcurrentRecord: goroutines recording through the C API into one
// aggregator lose nothing (run with -race).
func TestConcurrentRecord(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{})
	const workers, per = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := capitest.RecordEvent(h, "T", string(rune('a'+w)), int64(i), int64(i+1), true, 1, 1000); err.Code != 0 {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rs := rows(t, h, 1000)
	total := 0.0
	for _, row := range rs {
		total += row.Score
	}
	if len(rs) != workers || total != workers*per {
		t.Fatalf("%d rows, total %v", len(rs), total)
	}
}
