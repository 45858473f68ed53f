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

// TestMain checks that no test leaves a handle behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if n := capitest.LiveHandles(); code == 0 && n != 0 {
		println("capi: handles left behind:", n)
		code = 1
	}
	os.Exit(code)
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

func newAgg(t *testing.T, ttl int64) uint64 {
	t.Helper()
	h, err := capitest.NewAggregator(ttl, 0)
	wantCode(t, "new", err, capitest.OK)
	if h == 0 {
		t.Fatal("new: zero handle")
	}
	t.Cleanup(func() { capitest.Free(h) })
	return h
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

// TestVectors runs the shared vectors through poh_score_columns and, for the
// valid ones, through an aggregator (score of each holder = score of its events).
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			c := v.columns(t)
			got, err := capitest.ScoreColumns(c, v.Now)
			if v.Error != nil {
				wantCode(t, "score", err, capitest.InvalidEvent)
				if err.Index != v.Error.Index || err.Field != v.Error.Field || err.Reason != v.Error.Reason {
					t.Fatalf("error %+v, want %+v", err, *v.Error)
				}
				return
			}
			wantCode(t, "score", err, capitest.OK)
			if math.Float64bits(got) != math.Float64bits(*v.Score) {
				t.Fatalf("score %v, want %v", got, *v.Score)
			}
			// The same through the aggregator, when every hold ends by now
			// (closed holds are credited in full when recorded): the sum
			// over holders must be the score up to rounding.
			for _, e := range v.Events {
				if e.End != nil && *e.End > v.Now {
					return
				}
			}
			h := newAgg(t, 0)
			if len(c.Start) > 0 {
				n, err := capitest.RecordColumns(h, c, 1, false)
				wantCode(t, "record", err, capitest.OK)
				if n != int64(len(c.Start)) {
					t.Fatalf("accepted %d of %d", n, len(c.Start))
				}
			}
			r, err := capitest.Snapshot(h, v.Now)
			wantCode(t, "snapshot", err, capitest.OK)
			rows, err := capitest.Stats(r, 0, 0)
			wantCode(t, "stats", err, capitest.OK)
			capitest.Free(r)
			sum := 0.0
			for _, row := range rows {
				sum += row.Score
			}
			if math.Abs(sum-*v.Score) > 1e-9*math.Abs(*v.Score) {
				t.Fatalf("aggregator total %v, want %v", sum, *v.Score)
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

func TestScoreEvents(t *testing.T) {
	got, err := capitest.ScoreEvents(evs([3]float64{0, 10, 2}, [3]float64{50, -1, 1}, [3]float64{90, 150, 1}, [3]float64{120, -1, 3}), 100)
	wantCode(t, "score events", err, capitest.OK)
	if got != 80 {
		t.Fatalf("score %v, want 80 (README example)", got)
	}
	_, err = capitest.ScoreEvents(evs([3]float64{0, 10, 2}, [3]float64{10, 5, 1}), 100)
	wantCode(t, "score events", err, capitest.InvalidEvent)
	if err.Index != 1 || err.Field != "end" || err.Reason != "end_before_start" ||
		err.Message != "event 1: end 5: is before start 10" {
		t.Fatalf("error %+v", err)
	}
	if s, err := capitest.ScoreEvents(nil, 100); err.Code != capitest.OK || s != 0 {
		t.Fatalf("empty: %v %+v", s, err)
	}
	if s, err := capitest.ScoreEvents(evs([3]float64{0, -1, 1}), capitest.Now); err.Code != capitest.OK || s < 1.7e9 {
		t.Fatalf("POH_NOW: %v %+v", s, err)
	}
}

func TestColumnsShapeErrors(t *testing.T) {
	for name, c := range map[string]capitest.Cols{
		"has_end without end": {Start: []int64{1}, HasEnd: []uint8{1}},
		"ids of one column":   {Start: []int64{1}, Tokens: []string{"T"}, Holders: []string{}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := capitest.ScoreColumns(c, 10)
			if err.Code == capitest.OK {
				t.Fatal("accepted")
			}
		})
	}
	h := newAgg(t, 0)
	_, err := capitest.RecordColumns(h, capitest.Cols{Start: []int64{1}}, 10, false)
	wantCode(t, "record without ids", err, capitest.InvalidEvent)
}

func TestBadHandles(t *testing.T) {
	h := newAgg(t, 0)
	r, err := capitest.Snapshot(h, 10)
	wantCode(t, "snapshot", err, capitest.OK)
	wantCode(t, "free result", capitest.Free(r), capitest.OK)
	dead, _ := capitest.NewAggregator(0, 0)
	wantCode(t, "free", capitest.Free(dead), capitest.OK)
	txt, err := capitest.MetricsText(h)
	wantCode(t, "metrics", err, capitest.OK)
	defer capitest.Free(txt)
	for _, bad := range []uint64{0, 1 << 60, dead, r} {
		wantCode(t, "record", capitest.Record(bad, "T", "a", 0, 1, true, 1, 10), capitest.BadHandle)
		_, err := capitest.GC(bad, 10)
		wantCode(t, "gc", err, capitest.BadHandle)
		_, err = capitest.Snapshot(bad, 10)
		wantCode(t, "snapshot", err, capitest.BadHandle)
		_, err = capitest.TopN(bad, 1, 10, "")
		wantCode(t, "top_n", err, capitest.BadHandle)
		_, _, err = capitest.Size(bad)
		wantCode(t, "size", err, capitest.BadHandle)
		wantCode(t, "free", capitest.Free(bad), capitest.BadHandle)
	}
	// Wrong kinds: an aggregator is not a result, a text result is not stats.
	_, err = capitest.Stats(h, 0, 0)
	wantCode(t, "stats of aggregator", err, capitest.BadHandle)
	_, err = capitest.Stats(txt, 0, 0)
	wantCode(t, "stats of text", err, capitest.BadHandle)
	wantCode(t, "start_gc on result", capitest.StartGC(txt, 10), capitest.BadHandle)
}

func TestNullPointersAndNegativeLengths(t *testing.T) {
	h := newAgg(t, 0)
	wantCode(t, "record", capitest.Record(h, "T", "a", 0, 1, true, 1, 10), capitest.OK)
	r, err := capitest.Snapshot(h, 10)
	wantCode(t, "snapshot", err, capitest.OK)
	defer capitest.Free(r)
	codes := capitest.NullCases(h, r)
	for i, c := range codes {
		// The result is a stats result, so poh_result_text says bad handle;
		// poh_version says the buffer is too small; freeing 0 is a bad handle.
		if c == capitest.OK || c == capitest.Internal {
			t.Errorf("case %d: status %d", i, c)
		}
	}
	if len(codes) != 43 {
		t.Fatalf("%d cases ran", len(codes))
	}
}

func TestAbsurdLength(t *testing.T) {
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
	v, err := capitest.Version(16)
	wantCode(t, "version", err, capitest.OK)
	if v != version {
		t.Fatalf("version %q", v)
	}
	_, err = capitest.Version(len(version))
	wantCode(t, "short buffer", err, capitest.BufferTooSmall)
}

func TestAggregatorLifecycle(t *testing.T) {
	h := newAgg(t, 50)
	wantCode(t, "record", capitest.Record(h, "T", "alice", 0, 10, true, 2, 100), capitest.OK)
	wantCode(t, "record open", capitest.Record(h, "T", "bob", 50, 0, false, 1, 100), capitest.OK)
	err := capitest.Record(h, "T", "bob", 10, 5, true, 1, 100)
	wantCode(t, "bad record", err, capitest.InvalidEvent)
	if err.Field != "end" || err.Index != 0 || err.Reason != "end_before_start" {
		t.Fatalf("error %+v", err)
	}
	n, err := capitest.RecordColumns(h, capitest.Cols{
		Start: []int64{90, 5, 120}, End: []int64{150, 1, 0}, HasEnd: []uint8{1, 1, 0},
		Weight: []float64{1, 1, 3}, Tokens: []string{"T", "T", "U"}, Holders: []string{"bob", "dave", "carol"},
	}, 100, true)
	wantCode(t, "partial", err, capitest.InvalidEvent)
	if n != 2 || err.Index != 1 || err.Field != "end" {
		t.Fatalf("partial: accepted %d, %+v", n, err)
	}

	r, err := capitest.Snapshot(h, 100)
	wantCode(t, "snapshot", err, capitest.OK)
	rows, err := capitest.Stats(r, 0, 0)
	wantCode(t, "stats", err, capitest.OK)
	_, err = capitest.Stats(r, -1, 0)
	wantCode(t, "short rows", err, capitest.BufferTooSmall)
	_, err = capitest.Stats(r, 0, -1)
	wantCode(t, "short ids", err, capitest.BufferTooSmall)
	capitest.Free(r)
	want := []capitest.Stat{
		{HolderID: "bob", Score: 110, TotalSeconds: 110, Events: 2, OpenHolds: 1, Tokens: 1, Updated: 100},
		{HolderID: "alice", Score: 20, TotalSeconds: 10, Events: 1, OpenHolds: 0, Tokens: 1, Updated: 100},
		{HolderID: "carol", Score: 0, TotalSeconds: 0, Events: 1, OpenHolds: 1, Tokens: 1, Updated: 100},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Fatalf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}

	r, err = capitest.TopN(h, 1, 200, "U")
	wantCode(t, "top_n", err, capitest.OK)
	rows, _ = capitest.Stats(r, 0, 0)
	capitest.Free(r)
	if len(rows) != 1 || rows[0].HolderID != "carol" || rows[0].Score != 240 {
		t.Fatalf("top_n U: %+v", rows)
	}
	_, err = capitest.TopN(h, -1, 200, "")
	wantCode(t, "top_n -1", err, capitest.InvalidEvent)

	closed, err := capitest.CloseHold(h, "T", "bob", 120, 120)
	wantCode(t, "close", err, capitest.OK)
	if closed != 1 {
		t.Fatalf("closed %d", closed)
	}
	_, err = capitest.CloseHold(h, "T", "bob", 130, 130)
	wantCode(t, "close again", err, capitest.NoOpenHold)
	_, err = capitest.CloseHold(h, "U", "carol", 10, 130)
	wantCode(t, "close before start", err, capitest.InvalidEvent)

	// TTL 50: at 171 alice (updated 100) and bob (closed at 120) are idle
	// > 50 with no open hold; carol still holds.
	dropped, err := capitest.GC(h, 171)
	wantCode(t, "gc", err, capitest.OK)
	if dropped != 2 {
		t.Fatalf("dropped %d", dropped)
	}
	if n, _ := capitest.Len(h); n != 1 {
		t.Fatalf("len %d", n)
	}

	m, err := capitest.MetricsText(h)
	wantCode(t, "metrics", err, capitest.OK)
	txt, err := capitest.Text(m, 0)
	wantCode(t, "text", err, capitest.OK)
	_, err = capitest.Text(m, -1)
	wantCode(t, "short text", err, capitest.BufferTooSmall)
	capitest.Free(m)
	for _, s := range []string{`poh_hold_events_total{result="accepted"} 4`, `poh_hold_events_total{result="rejected"} 2`,
		"poh_gc_evictions_total 2", "poh_holders 1", "poh_open_holds 1"} {
		if !strings.Contains(txt, s) {
			t.Errorf("metrics text lacks %q:\n%s", s, txt)
		}
	}

	wantCode(t, "start gc", capitest.StartGC(h, 10), capitest.OK)
	wantCode(t, "start gc twice", capitest.StartGC(h, 10), capitest.State)
	wantCode(t, "stop gc", capitest.StopGC(h), capitest.OK)
	wantCode(t, "start gc again", capitest.StartGC(h, 10), capitest.OK)
	// poh_free stops the running GC.
	wantCode(t, "free", capitest.Free(h), capitest.OK)
	wantCode(t, "use after free", capitest.Record(h, "T", "a", 0, 1, true, 1, 10), capitest.BadHandle)

	noTTL := newAgg(t, 0)
	wantCode(t, "gc without ttl", capitest.StartGC(noTTL, 10), capitest.State)
}

// TestConcurrentRecord: goroutines recording through the C API into one
// aggregator lose nothing (run with -race).
func TestConcurrentRecord(t *testing.T) {
	h := newAgg(t, 0)
	const workers, per = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if err := capitest.Record(h, "T", string(rune('a'+w)), int64(i), int64(i+1), true, 1, 1000); err.Code != 0 {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r, _ := capitest.Snapshot(h, 1000)
	defer capitest.Free(r)
	rows, _ := capitest.Stats(r, 0, 0)
	total := 0.0
	for _, row := range rows {
		total += row.Score
	}
	if len(rows) != workers || total != workers*per {
		t.Fatalf("%d rows, total %v", len(rows), total)
	}
}
