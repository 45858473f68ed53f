package main

import (
	"math"
	"strings"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

// What the Python package needs of the C API to be exact under hostile
// input: a batch scored in parts gives the bits of the whole (a generator is
// consumed in bounded chunks), and rows it refused before the library are
// counted as the library counts its own.

func TestScoreContinueGivesTheBitsOfTheWhole(t *testing.T) {
	n := 1001
	c := capitest.Cols{Start: make([]int64, n), End: make([]int64, n), HasEnd: make([]uint8, n), Weight: make([]float64, n)}
	for i := range n {
		c.Start[i] = int64(i * 7 % 1000)
		c.End[i], c.HasEnd[i] = c.Start[i]+int64(i%13), uint8(i%3)
		c.Weight[i] = math.Pow(1.37, float64(i%97)) / 3 // magnitudes far apart: the compensation matters
	}
	part := func(lo, hi int) capitest.Cols {
		return capitest.Cols{Start: c.Start[lo:hi], End: c.End[lo:hi], HasEnd: c.HasEnd[lo:hi], Weight: c.Weight[lo:hi]}
	}
	for _, o := range []capitest.ScoreOpts{{Now: 1200}, {Now: 1200, Window: &capitest.Window{T0: 100, T1: 900}},
		{Now: 1200, Window: &capitest.Window{T0: 100, T1: 900}, TWAB: true}} {
		whole, err := capitest.Score(c, o)
		wantCode(t, "whole", err, capitest.OK)
		var got, sum, comp float64
		for lo := 0; lo < n; lo += 64 {
			got, sum, comp, err = capitest.ScorePart(part(lo, min(lo+64, n)), o, sum, comp)
			wantCode(t, "part", err, capitest.OK)
		}
		if math.Float64bits(got) != math.Float64bits(whole) {
			t.Errorf("%+v: parts %v, whole %v", o, got, whole)
		}
	}
	_, _, _, err := capitest.ScorePart(part(0, 1), capitest.ScoreOpts{Now: 5, Exact: true}, 0, 0)
	wantCode(t, "continue with exact", err, capitest.InvalidArgument)
	if !strings.Contains(err.Message, "POH_SCORE_CONTINUE") {
		t.Errorf("message %q does not name the flag", err.Message)
	}
}

func TestCountRejected(t *testing.T) {
	leakCheck(t)
	h := newAgg(t, capitest.Options{})
	wantCode(t, "count 2", capitest.CountRejected(h, nil, 2), capitest.OK)
	// a strict batch refused for one unconvertible row, with three converted
	// rows of which one is invalid: 2 rejected, 2 dropped more
	c := capitest.Cols{Start: []int64{0, 5, 0}, End: []int64{1, 1, 1}, HasEnd: []uint8{1, 1, 1},
		Weight: []float64{1, 1, 1}, Tokens: []string{"T", "T", "T"}, Holders: []string{"a", "b", "c"}}
	wantCode(t, "count a refusal", capitest.CountRejected(h, &c, 1), capitest.OK)
	wantCode(t, "negative", capitest.CountRejected(h, nil, -1), capitest.InvalidArgument)
	wantCode(t, "no ids", capitest.CountRejected(h, &capitest.Cols{Start: []int64{0}}, 0), capitest.InvalidEvent)
	wantCode(t, "bad handle", capitest.CountRejected(0, nil, 1), capitest.BadHandle)
	m, err := capitest.MetricsText(h)
	wantCode(t, "metrics", err, capitest.OK)
	txt, err := capitest.Text(m, 0)
	wantCode(t, "text", err, capitest.OK)
	capitest.Free(m)
	for _, s := range []string{`poh_hold_events_total{result="rejected"} 4`, `poh_hold_events_total{result="dropped"} 2`,
		`poh_hold_events_total{result="accepted"} 0`, "poh_holders 0"} {
		if !strings.Contains(txt, s) {
			t.Errorf("metrics text lacks %q:\n%s", s, txt)
		}
	}
}
