package core

import (
	"reflect"
	"testing"
)

// exportFixture records three holders (open and closed holds, three tokens,
// a weight of 1e17 on a hold ending at aliceEnd), closes alice's open U hold
// and exports. It returns the events it recorded.
func exportFixture(t *testing.T, opts Options, aliceEnd int64) (*Aggregator, []HoldEvent, []HolderState, MetricsState) {
	t.Helper()
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	evs := []HoldEvent{
		{TokenID: "T", HolderID: "alice", Start: 0, End: 10, HasEnd: true, Weight: 0.1},
		{TokenID: "T", HolderID: "alice", Start: 3, End: aliceEnd, HasEnd: true, Weight: 1e17},
		{TokenID: "U", HolderID: "alice", Start: 5, Weight: 2},
		{TokenID: "T", HolderID: "bob", Start: 50, Weight: 1},
		{TokenID: "T", HolderID: "bob", Start: 90, End: 150, HasEnd: true, Weight: 0.3},
		{TokenID: "V", HolderID: "carol", Start: 1, End: 2, HasEnd: true, Weight: 3},
	}
	if _, err := a.Record(100, evs, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CloseHold(120, "U", "alice", 110); err != nil {
		t.Fatal(err)
	}
	states, m, err := a.Export()
	if err != nil {
		t.Fatal(err)
	}
	return a, evs, states, m
}

func TestExportImportRoundTrip(t *testing.T) {
	a, evs, states, m := exportFixture(t, Options{Shards: 4}, 17)
	if m.Accepted != uint64(len(evs)) {
		t.Fatalf("accepted %d, want %d", m.Accepted, len(evs))
	}
	b, err := New(Options{Shards: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Import(states, m); err != nil {
		t.Fatal(err)
	}
	for _, now := range []int64{0, 100, 200, 1e6} {
		want, _ := snapshot(a, now)
		got, _ := snapshot(b, now)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("now %d: snapshot after import\n got %+v\nwant %+v", now, got, want)
		}
		wantT, _ := topN(a, 2, now, "T")
		gotT, _ := topN(b, 2, now, "T")
		if !reflect.DeepEqual(gotT, wantT) {
			t.Fatalf("now %d: top T after import\n got %+v\nwant %+v", now, gotT, wantT)
		}
	}
	ta, _ := a.MetricsText()
	tb, _ := b.MetricsText()
	if ta != tb {
		t.Fatalf("metrics differ after import:\n%s\n---\n%s", tb, ta)
	}
	// The same continuation gives the same bits.
	more := []HoldEvent{{TokenID: "T", HolderID: "bob", Start: 60, End: 61, HasEnd: true, Weight: 0.7}}
	for _, x := range []*Aggregator{a, b} {
		if _, err := x.Record(300, more, RecordOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := x.CloseHold(301, "T", "bob", 200); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := snapshot(a, 400)
	got, _ := snapshot(b, 400)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after continuing\n got %+v\nwant %+v", got, want)
	}
}

func TestImportRejects(t *testing.T) {
	good := HolderState{HolderID: "h", UpdatedAt: 1, Tokens: []TokenState{{TokenID: "T", UpdatedAt: 1}}}
	tests := []struct {
		name   string
		states []HolderState
	}{
		{"empty holder id", []HolderState{{HolderID: "", Tokens: good.Tokens}}},
		{"no tokens", []HolderState{{HolderID: "h"}}},
		{"duplicate holder", []HolderState{good, good}},
		{"duplicate token", []HolderState{{HolderID: "h", Tokens: []TokenState{{TokenID: "T"}, {TokenID: "T"}}}}},
		{"bad time", []HolderState{{HolderID: "h", UpdatedAt: -1, Tokens: good.Tokens}}},
		{"bad weight", []HolderState{{HolderID: "h", Tokens: []TokenState{{TokenID: "T",
			Live: []LiveHoldState{{Start: 1, Weight: -1}}}}}}},
		{"live hold ending before its start", []HolderState{{HolderID: "h", Tokens: []TokenState{{TokenID: "T",
			Live: []LiveHoldState{{Start: 5, End: 4, HasEnd: true, Weight: 1}}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := New(Options{})
			if err := a.Import(tt.states, MetricsState{}); err == nil {
				t.Fatal("Import accepted bad state")
			}
			if a.Len() != 0 {
				t.Fatalf("a failed Import left %d holders", a.Len())
			}
		})
	}
	a, _ := New(Options{})
	if err := a.Import([]HolderState{good}, MetricsState{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Import([]HolderState{good}, MetricsState{}); err == nil {
		t.Fatal("Import over an existing holder succeeded")
	}
}

func TestExportImportHistory(t *testing.T) {
	camp := Window{5, 500}
	opts := Options{Shards: 4, History: true, Window: &camp}
	a, _, states, m := exportFixture(t, opts, 170)
	var kept int
	for _, h := range states {
		for _, ts := range h.Tokens {
			kept += len(ts.History)
		}
	}
	if kept != 5 { // every closed hold: 4 recorded closed + 1 closed later
		t.Fatalf("exported %d history intervals, want 5", kept)
	}
	b, err := New(Options{Shards: 16, History: true, Window: &camp})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.StateConfig(), a.StateConfig(); got != want || !want.History || want.Window != camp {
		t.Fatalf("StateConfig %+v, want %+v", got, want)
	}
	if err := b.Import(states, m); err != nil {
		t.Fatal(err)
	}
	windows := []Window{{0, 5}, {0, 100}, {4, 95}, {60, 1e6}, {100, 100}, All}
	check := func(when string) {
		t.Helper()
		for _, now := range []int64{0, 100, 200, 1e6} {
			for _, w := range windows {
				want, err1 := a.Query(Query{Now: now, Window: &w})
				got, err2 := b.Query(Query{Now: now, Window: &w})
				if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: now %d window %v: SnapshotWindow\n got %+v (%v)\nwant %+v (%v)", when, now, w, got, err2, want, err1)
				}
				wantT, _ := a.Query(Query{N: 2, Now: now, Token: "T", Window: &w})
				gotT, _ := b.Query(Query{N: 2, Now: now, Token: "T", Window: &w})
				if !reflect.DeepEqual(gotT, wantT) {
					t.Fatalf("%s: now %d window %v: TopNWindow T\n got %+v\nwant %+v", when, now, w, gotT, wantT)
				}
			}
		}
	}
	check("after import")
	more := []HoldEvent{{TokenID: "T", HolderID: "bob", Start: 60, End: 61, HasEnd: true, Weight: 0.7}}
	for _, x := range []*Aggregator{a, b} {
		if _, err := x.Record(300, more, RecordOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := x.CloseHold(301, "T", "bob", 200); err != nil {
			t.Fatal(err)
		}
	}
	check("after continuing")

	// Without History the intervals are dropped and window queries refuse.
	c, _ := New(Options{Window: &camp})
	if err := c.Import(states, m); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(Query{Now: 100, Window: &All}); err != ErrNoHistory {
		t.Fatalf("window query without history: %v", err)
	}
	again, _, _ := c.Export()
	for _, h := range again {
		for _, ts := range h.Tokens {
			if ts.History != nil {
				t.Fatalf("an aggregator without History exported history for %s", h.HolderID)
			}
		}
	}
}

func TestImportRejectsBadHistory(t *testing.T) {
	for name, iv := range map[string]IntervalState{
		"end before start": {Start: 10, End: 5, Weight: 1},
		"bad time":         {Start: -1, End: 5, Weight: 1},
		"bad weight":       {Start: 1, End: 5, Weight: -2},
	} {
		t.Run(name, func(t *testing.T) {
			a, _ := New(Options{History: true})
			hs := HolderState{HolderID: "h", UpdatedAt: 1,
				Tokens: []TokenState{{TokenID: "T", UpdatedAt: 1, History: []IntervalState{iv}}}}
			if err := a.Import([]HolderState{hs}, MetricsState{}); err == nil {
				t.Fatal("Import accepted a bad history interval")
			}
		})
	}
}
