package main

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

type windowVector struct {
	vector
	Window    [2]int64 `json:"window"`
	TWAB      *float64 `json:"twab"`
	TWABError *struct {
		Index  int64  `json:"index"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"twab_error"`
}

func loadWindowVectors(t *testing.T) []windowVector {
	b, err := os.ReadFile("../testdata/window_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Vectors []windowVector }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatal("no window vectors")
	}
	return doc.Vectors
}

func wantError(t *testing.T, what string, got capitest.Err, index int64, field, reason string) {
	t.Helper()
	wantCode(t, what, got, capitest.InvalidEvent)
	if got.Index != index || got.Field != field || got.Reason != reason {
		t.Fatalf("%s: error %+v, want index %d field %s reason %s", what, got, index, field, reason)
	}
}

func sameBits(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Float64bits(got) != math.Float64bits(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

// TestWindowVectors runs testdata/window_vectors.json through poh_score with
// POH_SCORE_WINDOW and with POH_SCORE_TWAB, as columns and as packed rows,
// and through an aggregator with history (a POH_QUERY_WINDOW query = the
// batch windowed score, holder by holder).
func TestWindowVectors(t *testing.T) {
	leakCheck(t)
	for _, v := range loadWindowVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			leakCheck(t)
			c := v.columns(t)
			w := &capitest.Window{T0: v.Window[0], T1: v.Window[1]}
			rowsLayout := capitest.Cols{Rows: packedRows(c)}
			s1, e1 := capitest.Score(c, capitest.ScoreOpts{Now: v.Now, Window: w})
			s2, e2 := capitest.Score(rowsLayout, capitest.ScoreOpts{Now: v.Now, Window: w})
			t1, te1 := capitest.Score(c, capitest.ScoreOpts{Now: v.Now, Window: w, TWAB: true})
			t2, te2 := capitest.Score(rowsLayout, capitest.ScoreOpts{Now: v.Now, Window: w, TWAB: true})
			if v.Error != nil {
				for _, e := range []capitest.Err{e1, e2, te1, te2} {
					wantError(t, "window", e, v.Error.Index, v.Error.Field, v.Error.Reason)
				}
				if v.Error.Field == "window" {
					h, err := capitest.New(capitest.Options{Window: w})
					wantError(t, "campaign window", err, -1, "window", v.Error.Reason)
					if h != 0 {
						capitest.Free(h)
						t.Fatal("a handle for a bad window")
					}
				}
				return
			}
			wantCode(t, "score columns", e1, capitest.OK)
			wantCode(t, "score rows", e2, capitest.OK)
			sameBits(t, "score columns", s1, *v.Score)
			sameBits(t, "score rows", s2, *v.Score)
			if v.TWABError != nil {
				for _, e := range []capitest.Err{te1, te2} {
					wantError(t, "twab", e, v.TWABError.Index, v.TWABError.Field, v.TWABError.Reason)
				}
			} else {
				wantCode(t, "twab columns", te1, capitest.OK)
				wantCode(t, "twab rows", te2, capitest.OK)
				sameBits(t, "twab columns", t1, *v.TWAB)
				sameBits(t, "twab rows", t2, *v.TWAB)
			}

			h := newAgg(t, capitest.Options{History: true})
			if len(c.Start) > 0 {
				record(t, h, c, 1)
			}
			rs, err := capitest.Rows(h, capitest.Q{Now: v.Now, Window: w})
			wantCode(t, "window query", err, capitest.OK)
			groups := byHolder(c)
			if len(rs) != len(groups) {
				t.Fatalf("%d rows, want %d holders", len(rs), len(groups))
			}
			sum := 0.0
			for _, row := range rs {
				sum += row.Score
				want, err := capitest.Score(groups[row.HolderID], capitest.ScoreOpts{Now: v.Now, Window: w})
				wantCode(t, "score of "+row.HolderID, err, capitest.OK)
				if !closeTo(row.Score, want) {
					t.Errorf("holder %q: window query %v, its events' windowed score %v", row.HolderID, row.Score, want)
				}
			}
			if !closeTo(sum, *v.Score) {
				t.Fatalf("aggregator window total %v, want %v", sum, *v.Score)
			}
		})
	}
}

func TestScoreWithoutWindowFlag(t *testing.T) {
	leakCheck(t)
	c := capitest.Cols{Start: []int64{0, 50}, End: []int64{10, 0}, HasEnd: []uint8{1, 0}, Weight: []float64{2, 1}}
	got, err := capitest.Score(c, capitest.ScoreOpts{Now: 100})
	wantCode(t, "score", err, capitest.OK)
	if got != 70 {
		t.Fatalf("score %v, want 70", got)
	}
	got, err = capitest.Score(capitest.Cols{Rows: evs([3]float64{0, 10, 2}, [3]float64{50, -1, 1})},
		capitest.ScoreOpts{Now: 100})
	wantCode(t, "score rows", err, capitest.OK)
	if got != 70 {
		t.Fatalf("score %v, want 70", got)
	}
	_, err = capitest.Score(c, capitest.ScoreOpts{Now: 100, TWAB: true})
	wantCode(t, "twab without a window", err, capitest.InvalidArgument)
	_, err = capitest.Score(c, capitest.ScoreOpts{Now: 100, Window: &capitest.Window{T0: 20, T1: 10}})
	if err.Message != "window [20, 10): end 10 is before start 20" {
		t.Fatalf("message %q", err.Message)
	}
	_, err = capitest.Score(capitest.Cols{Rows: []capitest.Event{}},
		capitest.ScoreOpts{Now: 100, Window: &capitest.Window{T0: 5, T1: 5}, TWAB: true})
	wantError(t, "empty twab", err, -1, "window", "empty_window")
	if err.Message != "window [5, 5): has no elapsed time at now 100 (start 5, end 5)" {
		t.Fatalf("message %q", err.Message)
	}
	// Checks run in the order now, window, elapsed time, rows.
	bad := capitest.Cols{Rows: evs([3]float64{10, 5, 1})}
	_, err = capitest.Score(bad, capitest.ScoreOpts{Now: -1, Window: &capitest.Window{T0: 20, T1: 10}})
	wantError(t, "now first", err, -1, "now", "out_of_range")
	_, err = capitest.Score(bad, capitest.ScoreOpts{Now: 100, Window: &capitest.Window{T0: 20, T1: 10}, TWAB: true})
	wantError(t, "window second", err, -1, "window", "end_before_start")
	_, err = capitest.Score(bad, capitest.ScoreOpts{Now: 100, Window: &capitest.Window{T0: 5, T1: 5}, TWAB: true})
	wantError(t, "elapsed third", err, -1, "window", "empty_window")
	_, err = capitest.Score(bad, capitest.ScoreOpts{Now: 100, Window: &capitest.Window{T0: 0, T1: 50}, TWAB: true})
	wantError(t, "rows last", err, 0, "end", "end_before_start")
}

func TestAggregatorWindows(t *testing.T) {
	leakCheck(t)
	// Without history (with or without a campaign window), window queries are
	// refused, whatever else the query selects.
	for _, o := range []capitest.Options{{}, {Window: &capitest.Window{T0: 0, T1: 50}}} {
		h := newAgg(t, o)
		wantCode(t, "record", capitest.RecordEvent(h, "T", "a", 0, 5, true, 1, 10), capitest.OK)
		for _, q := range []capitest.Q{
			{Now: 100, Window: &capitest.Window{T0: 0, T1: 10}},
			{Now: 100, N: 3, Window: &capitest.Window{T0: 0, T1: 10}},
			{Now: 100, Token: "T", Holder: "a", Window: &capitest.Window{T0: 0, T1: 10}},
		} {
			f, err := capitest.Query(h, q)
			wantCode(t, "window query without history", err, capitest.NoHistory)
			if !strings.Contains(err.Message, "POH_AGGREGATOR_HISTORY") {
				t.Errorf("message %q does not say how to get history", err.Message)
			}
			if f.Result != 0 {
				capitest.Free(f.Result)
				t.Fatal("a result handle for a refused query")
			}
		}
	}

	// A campaign window [100, 200): recorded holds count only inside it.
	camp := newAgg(t, capitest.Options{Window: &capitest.Window{T0: 100, T1: 200}, History: true})
	record(t, camp, capitest.Cols{
		Start: []int64{50, 150, 0}, End: []int64{300, 0, 120}, HasEnd: []uint8{1, 0, 1},
		Weight: []float64{2, 1, 4}, Tokens: []string{"T", "T", "U"}, Holders: []string{"a", "b", "a"},
	}, 1)
	rs := rows(t, camp, 1000)
	// a: [100,200)×2 + [100,120)×4 = 280; b: open from 150, clipped at 200 = 50.
	if len(rs) != 2 || rs[0].HolderID != "a" || rs[0].Score != 280 || rs[1].Score != 50 {
		t.Fatalf("campaign rows %+v", rs)
	}
	// Any window from history, independent of the campaign window.
	rs, err := capitest.Rows(camp, capitest.Q{Now: 1000, Window: &capitest.Window{T0: 0, T1: 1000}})
	wantCode(t, "window query", err, capitest.OK)
	// a: 250×2 + 120×4 = 980; b: 850.
	if len(rs) != 2 || rs[0].Score != 980 || rs[1].Score != 850 || rs[0].TotalSeconds != 370 {
		t.Fatalf("window rows %+v", rs)
	}
	// One holder's row from history, inline: the same as its ranking row.
	f, err := capitest.Query(camp, capitest.Q{Now: 1000, Window: &capitest.Window{T0: 0, T1: 1000}, Holder: "a"})
	wantCode(t, "window holder", err, capitest.OK)
	if f.Result != 0 || f.Rows != 1 || f.First != rs[0] {
		t.Fatalf("window holder a: %+v, want %+v", f, rs[0])
	}
	top, err := capitest.Rows(camp, capitest.Q{Now: 1000, N: 1, Token: "U", Window: &capitest.Window{T0: 110, T1: 1000}})
	wantCode(t, "window top-n", err, capitest.OK)
	if len(top) != 1 || top[0].HolderID != "a" || top[0].Score != 40 || top[0].Tokens != 1 {
		t.Fatalf("window top-n U %+v", top)
	}
	_, err = capitest.Query(camp, capitest.Q{Now: 1000, N: 1, Window: &capitest.Window{T0: 10, T1: 5}})
	wantError(t, "bad window", err, -1, "window", "end_before_start")
	_, err = capitest.Query(camp, capitest.Q{Now: 1000, N: -1, Window: &capitest.Window{T0: 0, T1: 5}})
	wantError(t, "n < 0", err, -1, "n", "out_of_range")
	_, err = capitest.Query(0, capitest.Q{Now: 1000, Window: &capitest.Window{T0: 0, T1: 5}})
	wantCode(t, "bad handle", err, capitest.BadHandle)
}

// TestRecordPartialReportsEveryRow: one poh_record call with
// POH_RECORD_PARTIAL records the valid rows and returns every bad one
// (index, field, reason, message) in an errors result, however many there
// are; strict mode records nothing and reports the lowest-index bad row;
// POH_RECORD_CHECK validates as strict mode does and records nothing.
func TestRecordPartialReportsEveryRow(t *testing.T) {
	leakCheck(t)
	type bad struct {
		index         int64
		field, reason string
	}
	small := capitest.Cols{
		Start: []int64{0, 10, 5, 7, 1, 3}, End: []int64{10, 5, 9, 1, 2, 4}, HasEnd: []uint8{1, 1, 1, 1, 1, 1},
		Weight: []float64{1, 1, math.NaN(), 1, 1, 2}, Tokens: []string{"T", "T", "T", "T", "", "T"},
		Holders: []string{"a", "b", "c", "d", "e", "f"},
	}
	smallBad := []bad{{1, "end", "end_before_start"}, {2, "weight", "not_finite"}, {3, "end", "end_before_start"},
		{4, "token_id", "empty"}}
	// Many rows, every third one bad: still one call, one result.
	var big capitest.Cols
	var bigBad []bad
	for i := range 3000 {
		big.Start, big.HasEnd = append(big.Start, int64(i)), append(big.HasEnd, 1)
		big.End, big.Weight = append(big.End, int64(i+10)), append(big.Weight, 1)
		big.Tokens, big.Holders = append(big.Tokens, "T"), append(big.Holders, "h"+itoa(int64(i%7)))
		if i%3 == 2 {
			big.Weight[i] = -1
			bigBad = append(bigBad, bad{int64(i), "weight", "negative"})
		}
	}
	for _, c := range []struct {
		name    string
		cols    capitest.Cols
		bad     []bad
		holders int64 // distinct holders of the valid rows
	}{{"small", small, smallBad, 2}, {"big", big, bigBad, 7}} {
		t.Run(c.name, func(t *testing.T) {
			leakCheck(t)
			n := int64(len(c.cols.Start))
			k := int64(len(c.bad))

			// Strict: nothing recorded, the lowest-index bad row reported.
			h := newAgg(t, capitest.Options{})
			res, err := capitest.Record(h, c.cols, 100, false)
			wantError(t, "strict", err, c.bad[0].index, c.bad[0].field, c.bad[0].reason)
			if res.Accepted != 0 || res.Rejected != 0 || res.Errors != nil {
				t.Fatalf("strict: %+v", res)
			}
			strictMsg := err.Message
			res, errs, err := capitest.RecordFlags(h, c.cols, 100, capitest.RecordCheck)
			wantError(t, "check", err, c.bad[0].index, c.bad[0].field, c.bad[0].reason)
			if res.Accepted != 0 || errs != 0 {
				t.Fatalf("check: %+v, errors %d", res, errs)
			}
			if n, _ := capitest.Holders(h); n != 0 {
				t.Fatalf("strict and check recorded %d holders", n)
			}

			// Partial: POH_OK, the valid rows recorded, every bad one reported.
			res, err = capitest.Record(h, c.cols, 100, true)
			wantCode(t, "partial", err, capitest.OK)
			if res.Accepted != n-k || res.Rejected != k || int64(len(res.Errors)) != k {
				t.Fatalf("partial: accepted %d rejected %d, %d errors; want %d, %d", res.Accepted, res.Rejected,
					len(res.Errors), n-k, k)
			}
			for i, e := range res.Errors {
				w := c.bad[i]
				if e.Index != w.index || e.Field != w.field || e.Reason != w.reason ||
					!strings.HasPrefix(e.Message, "event "+itoa(w.index)+": ") {
					t.Fatalf("error %d: %+v, want %+v", i, e, w)
				}
			}
			if res.Errors[0].Message != strictMsg {
				t.Errorf("partial message %q, strict %q", res.Errors[0].Message, strictMsg)
			}
			if got, _ := capitest.Holders(h); got != c.holders {
				t.Fatalf("%d holders after partial, want %d", got, c.holders)
			}
			var valid capitest.Cols
			isBad := map[int64]bool{}
			for _, b := range c.bad {
				isBad[b.index] = true
			}
			for i := range c.cols.Start {
				if !isBad[int64(i)] {
					valid.Start, valid.End = append(valid.Start, c.cols.Start[i]), append(valid.End, c.cols.End[i])
					valid.HasEnd = append(valid.HasEnd, c.cols.HasEnd[i])
					valid.Weight = append(valid.Weight, c.cols.Weight[i])
				}
			}
			want, err := capitest.Score(valid, capitest.ScoreOpts{Now: 5000})
			wantCode(t, "score of the valid rows", err, capitest.OK)
			total := 0.0
			for _, r := range rows(t, h, 5000) {
				total += r.Score
			}
			if !closeTo(total, want) {
				t.Fatalf("recorded total %v, want the valid rows' %v", total, want)
			}

			// The errors result itself: sized, refused into short buffers,
			// read only as errors.
			h2 := newAgg(t, capitest.Options{})
			_, errs, err = capitest.RecordFlags(h2, c.cols, 100, capitest.RecordPartial)
			wantCode(t, "partial", err, capitest.OK)
			if errs == 0 {
				t.Fatal("no errors result")
			}
			defer capitest.Free(errs)
			nr, nb, err := capitest.Size(errs)
			wantCode(t, "size", err, capitest.OK)
			msgBytes := 0
			for _, e := range res.Errors {
				msgBytes += len(e.Message)
			}
			if nr != k || nb != int64(msgBytes) {
				t.Fatalf("size: %d rows %d bytes, want %d, %d", nr, nb, k, msgBytes)
			}
			_, err = capitest.Errors(errs, -1, 0)
			wantCode(t, "short rows", err, capitest.BufferTooSmall)
			_, err = capitest.Errors(errs, 0, -1)
			wantCode(t, "short text", err, capitest.BufferTooSmall)
			again, err := capitest.Errors(errs, 3, 10)
			wantCode(t, "errors", err, capitest.OK)
			if len(again) != len(res.Errors) || again[k-1] != res.Errors[k-1] {
				t.Fatalf("errors read again differ: %d rows", len(again))
			}
		})
	}

	// Every row valid: no errors result is created.
	h := newAgg(t, capitest.Options{})
	res, errs, err := capitest.RecordFlags(h, capitest.Cols{Start: []int64{0}, End: []int64{1}, HasEnd: []uint8{1},
		Weight: []float64{1}, Tokens: []string{"T"}, Holders: []string{"z"}}, 100, capitest.RecordPartial)
	wantCode(t, "all valid", err, capitest.OK)
	if res.Accepted != 1 || res.Rejected != 0 || errs != 0 {
		t.Fatalf("all valid: %+v, errors %d", res, errs)
	}
	// A valid batch under POH_RECORD_CHECK: OK, nothing recorded.
	res, _, err = capitest.RecordFlags(h, capitest.Cols{Start: []int64{0}, End: []int64{1},
		Tokens: []string{"T"}, Holders: []string{"y"}}, 100, capitest.RecordCheck)
	wantCode(t, "check valid", err, capitest.OK)
	if n, _ := capitest.Holders(h); res.Accepted != 0 || n != 1 {
		t.Fatalf("check valid: %+v, %d holders (want only z)", res, n)
	}
	// Shape errors fail the whole call, even in partial mode: no result.
	res, errs, err = capitest.RecordFlags(h, capitest.Cols{Start: []int64{1}}, 100, capitest.RecordPartial)
	wantError(t, "no ids", err, -1, "token_id", "empty")
	if res.Accepted != 0 || errs != 0 {
		t.Fatalf("no ids: %+v, errors %d", res, errs)
	}
	_, _, err = capitest.RecordFlags(h, capitest.Cols{Start: []int64{0}, End: []int64{1},
		Tokens: []string{"T"}, Holders: []string{"y"}}, -1, capitest.RecordPartial)
	wantError(t, "bad now", err, -1, "now", "out_of_range")
}
