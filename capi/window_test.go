package main

import (
	"encoding/json"
	"math"
	"os"
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

// TestWindowVectors runs testdata/window_vectors.json through the windowed
// score and TWAB, as columns and as packed events, and through an aggregator
// with history (a window query = the batch windowed score).
func TestWindowVectors(t *testing.T) {
	for _, v := range loadWindowVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			c := v.columns(t)
			w := &capitest.Window{T0: v.Window[0], T1: v.Window[1]}
			var packed []capitest.Event
			for i := range c.Start {
				end := c.End[i]
				if c.HasEnd[i] == 0 {
					end = -1
				}
				packed = append(packed, capitest.Event{Start: c.Start[i], End: end, Weight: c.Weight[i]})
			}
			s1, e1 := capitest.ScoreColumnsWindow(c, v.Now, w)
			s2, e2 := capitest.ScoreEventsWindow(packed, v.Now, w)
			t1, te1 := capitest.TWABColumns(c, v.Now, w)
			t2, te2 := capitest.TWABEvents(packed, v.Now, w)
			if v.Error != nil {
				for _, e := range []capitest.Err{e1, e2, te1, te2} {
					wantError(t, "window", e, v.Error.Index, v.Error.Field, v.Error.Reason)
				}
				if v.Error.Field == "window" {
					h, err := capitest.NewAggregator2(capitest.Options{Window: w})
					wantError(t, "campaign window", err, -1, "window", v.Error.Reason)
					if h != 0 {
						t.Fatal("a handle for a bad window")
					}
				}
				return
			}
			wantCode(t, "score columns", e1, capitest.OK)
			wantCode(t, "score events", e2, capitest.OK)
			sameBits(t, "score columns", s1, *v.Score)
			sameBits(t, "score events", s2, *v.Score)
			if v.TWABError != nil {
				for _, e := range []capitest.Err{te1, te2} {
					wantError(t, "twab", e, v.TWABError.Index, v.TWABError.Field, v.TWABError.Reason)
				}
			} else {
				wantCode(t, "twab columns", te1, capitest.OK)
				wantCode(t, "twab events", te2, capitest.OK)
				sameBits(t, "twab columns", t1, *v.TWAB)
				sameBits(t, "twab events", t2, *v.TWAB)
			}

			h, err := capitest.NewAggregator2(capitest.Options{History: true})
			wantCode(t, "new2", err, capitest.OK)
			defer capitest.Free(h)
			if len(c.Start) > 0 {
				_, err = capitest.RecordColumns(h, c, 1, false)
				wantCode(t, "record", err, capitest.OK)
			}
			r, err := capitest.SnapshotWindow(h, v.Now, w)
			wantCode(t, "snapshot window", err, capitest.OK)
			rows, err := capitest.Stats(r, 0, 0)
			wantCode(t, "stats", err, capitest.OK)
			capitest.Free(r)
			sum := 0.0
			for _, row := range rows {
				sum += row.Score
			}
			if math.Abs(sum-*v.Score) > 1e-9*math.Abs(*v.Score) {
				t.Fatalf("aggregator window total %v, want %v", sum, *v.Score)
			}
		})
	}
}

func TestScoreWindowNilIsUnwindowed(t *testing.T) {
	c := capitest.Cols{Start: []int64{0, 50}, End: []int64{10, 0}, HasEnd: []uint8{1, 0}, Weight: []float64{2, 1}}
	got, err := capitest.ScoreColumnsWindow(c, 100, nil)
	wantCode(t, "score", err, capitest.OK)
	if got != 70 {
		t.Fatalf("score %v, want 70", got)
	}
	got, err = capitest.ScoreEventsWindow(evs([3]float64{0, 10, 2}, [3]float64{50, -1, 1}), 100, nil)
	wantCode(t, "score events", err, capitest.OK)
	if got != 70 {
		t.Fatalf("score %v, want 70", got)
	}
	_, err = capitest.TWABColumns(c, 100, nil)
	wantCode(t, "twab without a window", err, capitest.InvalidArgument)
	_, err = capitest.ScoreColumnsWindow(c, 100, &capitest.Window{T0: 20, T1: 10})
	if err.Message != "window [20, 10): end 10 is before start 20" {
		t.Fatalf("message %q", err.Message)
	}
	_, err = capitest.TWABEvents(nil, 100, &capitest.Window{T0: 5, T1: 5})
	if err.Message != "window [5, 5): has no elapsed time at now 100 (start 5, end 5)" {
		t.Fatalf("message %q", err.Message)
	}
}

func stats(t *testing.T, r uint64, err capitest.Err) []capitest.Stat {
	t.Helper()
	wantCode(t, "query", err, capitest.OK)
	defer capitest.Free(r)
	rows, err := capitest.Stats(r, 0, 0)
	wantCode(t, "stats", err, capitest.OK)
	return rows
}

func TestAggregatorWindows(t *testing.T) {
	// Old constructor and new2 without history: window queries are refused.
	for _, mk := range []func() (uint64, capitest.Err){
		func() (uint64, capitest.Err) { return capitest.NewAggregator(0, 0) },
		func() (uint64, capitest.Err) { return capitest.NewAggregator2(capitest.Options{}) },
	} {
		h, err := mk()
		wantCode(t, "new", err, capitest.OK)
		_, err = capitest.SnapshotWindow(h, 100, &capitest.Window{T0: 0, T1: 10})
		wantCode(t, "snapshot window without history", err, capitest.NoHistory)
		_, err = capitest.TopNWindow(h, 3, 100, "", &capitest.Window{T0: 0, T1: 10})
		wantCode(t, "top_n window without history", err, capitest.NoHistory)
		capitest.Free(h)
	}

	// A campaign window [100, 200): recorded holds count only inside it.
	camp, err := capitest.NewAggregator2(capitest.Options{Window: &capitest.Window{T0: 100, T1: 200}, History: true})
	wantCode(t, "new2", err, capitest.OK)
	defer capitest.Free(camp)
	c := capitest.Cols{
		Start: []int64{50, 150, 0}, End: []int64{300, 0, 120}, HasEnd: []uint8{1, 0, 1},
		Weight: []float64{2, 1, 4}, Tokens: []string{"T", "T", "U"}, Holders: []string{"a", "b", "a"},
	}
	n, err := capitest.RecordColumns(camp, c, 1, false)
	wantCode(t, "record", err, capitest.OK)
	if n != 3 {
		t.Fatalf("accepted %d", n)
	}
	r, err := capitest.Snapshot(camp, 1000)
	rows := stats(t, r, err)
	// a: [100,200)×2 + [100,120)×4 = 280; b: open from 150, clipped at 200 = 50.
	if len(rows) != 2 || rows[0].HolderID != "a" || rows[0].Score != 280 || rows[1].Score != 50 {
		t.Fatalf("campaign snapshot %+v", rows)
	}
	// Any window from history, independent of the campaign window.
	r, err = capitest.SnapshotWindow(camp, 1000, &capitest.Window{T0: 0, T1: 1000})
	rows = stats(t, r, err)
	// a: 250×2 + 120×4 = 980; b: 850.
	if len(rows) != 2 || rows[0].Score != 980 || rows[1].Score != 850 || rows[0].TotalSeconds != 370 {
		t.Fatalf("window snapshot %+v", rows)
	}
	r, err = capitest.TopNWindow(camp, 1, 1000, "U", &capitest.Window{T0: 110, T1: 1000})
	rows = stats(t, r, err)
	if len(rows) != 1 || rows[0].HolderID != "a" || rows[0].Score != 40 {
		t.Fatalf("top_n window U %+v", rows)
	}
	_, err = capitest.TopNWindow(camp, 1, 1000, "", &capitest.Window{T0: 10, T1: 5})
	wantError(t, "bad window", err, -1, "window", "end_before_start")
	_, err = capitest.TopNWindow(camp, -1, 1000, "", &capitest.Window{T0: 0, T1: 5})
	wantError(t, "n < 0", err, -1, "n", "out_of_range")
	_, err = capitest.SnapshotWindow(0, 1000, &capitest.Window{T0: 0, T1: 5})
	wantCode(t, "bad handle", err, capitest.BadHandle)
}

func TestRecordPartial(t *testing.T) {
	h := newAgg(t, 0)
	c := capitest.Cols{
		Start: []int64{0, 10, 5, 7, 1}, End: []int64{10, 5, 9, 1, 2}, HasEnd: []uint8{1, 1, 1, 1, 1},
		Weight: []float64{1, 1, math.NaN(), 1, 1}, Tokens: []string{"T", "T", "T", "T", ""},
		Holders: []string{"a", "b", "c", "d", "e"},
	}
	acc, nrej, idx, err := capitest.RecordPartial(h, c, 100, 5)
	wantError(t, "partial", err, 1, "end", "end_before_start")
	if acc != 1 || nrej != 4 || len(idx) != 4 || idx[0] != 1 || idx[1] != 2 || idx[2] != 3 || idx[3] != 4 {
		t.Fatalf("accepted %d rejected %d %v", acc, nrej, idx)
	}
	// A short index buffer gets the first indices; the count is still whole.
	acc, nrej, idx, _ = capitest.RecordPartial(h, c, 100, 2)
	if acc != 1 || nrej != 4 || len(idx) != 2 || idx[1] != 2 {
		t.Fatalf("short: accepted %d rejected %d %v", acc, nrej, idx)
	}
	acc, nrej, _, err = capitest.RecordPartial(h, capitest.Cols{Start: []int64{0}, End: []int64{1},
		HasEnd: []uint8{1}, Weight: []float64{1}, Tokens: []string{"T"}, Holders: []string{"z"}}, 100, 0)
	wantCode(t, "all valid", err, capitest.OK)
	if acc != 1 || nrej != 0 {
		t.Fatalf("all valid: %d %d", acc, nrej)
	}
	if n, _ := capitest.Len(h); n != 2 {
		t.Fatalf("holders %d, want 2 (a twice-recorded, z)", n)
	}
	_, _, _, err = capitest.RecordPartial(h, capitest.Cols{Start: []int64{1}}, 100, 0)
	wantCode(t, "no ids", err, capitest.InvalidEvent)
}
