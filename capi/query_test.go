package main

import (
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

// TestPairMatchesTopNRow: poh_aggregator_pair gives exactly the row that
// poh_aggregator_top_n with the token filter shows for that holder, open
// holds included, and found = 0 (zeroed row) for a pair that does not exist.
func TestPairMatchesTopNRow(t *testing.T) {
	h := newAgg(t, 0)
	_, err := capitest.RecordColumns(h, capitest.Cols{
		Start:   []int64{10, 20, 5, 30, 7},
		End:     []int64{50, 0, 9, 0, 8},
		HasEnd:  []uint8{1, 0, 1, 0, 1},
		Weight:  []float64{2, 1.5, 1, 3, 0.5},
		Tokens:  []string{"POH", "POH", "LP", "POH", "POH"},
		Holders: []string{"alice", "alice", "alice", "bob", "carol"},
	}, 100, false)
	wantCode(t, "record", err, capitest.OK)

	const now = 200
	r, err := capitest.TopN(h, 100, now, "POH")
	wantCode(t, "top_n", err, capitest.OK)
	rows, err := capitest.Stats(r, 0, 0)
	wantCode(t, "stats", err, capitest.OK)
	capitest.Free(r)
	if len(rows) != 3 {
		t.Fatalf("top_n(POH): %d rows", len(rows))
	}
	for _, want := range rows {
		got, found, err := capitest.Pair(h, "POH", want.HolderID, now)
		wantCode(t, "pair "+want.HolderID, err, capitest.OK)
		if !found || got != want {
			t.Errorf("pair(POH, %s) = %+v, %v; top_n row %+v", want.HolderID, got, found, want)
		}
	}
	for _, c := range []struct{ token, holder string }{{"LP", "bob"}, {"POH", "dave"}, {"NOPE", "alice"}} {
		got, found, err := capitest.Pair(h, c.token, c.holder, now)
		wantCode(t, "pair "+c.token+"/"+c.holder, err, capitest.OK)
		if found || got != (capitest.Stat{}) {
			t.Errorf("pair(%s, %s) = %+v, %v; want not found, zeroed", c.token, c.holder, got, found)
		}
	}
	// Open holds grow with now.
	a, _, _ := capitest.Pair(h, "POH", "alice", 300)
	b, _, _ := capitest.Pair(h, "POH", "alice", 400)
	if b.Score-a.Score != 150 || b.OpenHolds != 1 {
		t.Errorf("alice's open hold: score %v then %v, open %d", a.Score, b.Score, b.OpenHolds)
	}
}

func TestPairErrors(t *testing.T) {
	h := newAgg(t, 0)
	_, _, err := capitest.Pair(h, "", "alice", 10)
	wantCode(t, "empty token", err, capitest.InvalidEvent)
	if err.Field != "token_id" || err.Reason != "empty" {
		t.Errorf("empty token: field %q reason %q", err.Field, err.Reason)
	}
	_, _, err = capitest.Pair(h, "T", "\xff", 10)
	wantCode(t, "bad utf-8 holder", err, capitest.InvalidEvent)
	if err.Field != "holder_id" || err.Reason != "invalid_utf8" {
		t.Errorf("bad holder: field %q reason %q", err.Field, err.Reason)
	}
	_, _, err = capitest.Pair(h, "T", "a", -5)
	wantCode(t, "bad now", err, capitest.InvalidEvent)
	_, _, err = capitest.Pair(0, "T", "a", 10)
	wantCode(t, "zero handle", err, capitest.BadHandle)
	g, _ := capitest.NewAggregator(0, 0)
	capitest.Free(g)
	_, _, err = capitest.Pair(g, "T", "a", 10)
	wantCode(t, "freed handle", err, capitest.BadHandle)
}
