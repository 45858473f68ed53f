package core

import (
	"reflect"
	"testing"
)

func TestExportImportRoundTrip(t *testing.T) {
	a, err := New(Options{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	evs := []HoldEvent{
		{TokenID: "T", HolderID: "alice", Start: 0, End: 10, HasEnd: true, Weight: 0.1},
		{TokenID: "T", HolderID: "alice", Start: 3, End: 17, HasEnd: true, Weight: 1e17},
		{TokenID: "U", HolderID: "alice", Start: 5, Weight: 2},
		{TokenID: "T", HolderID: "bob", Start: 50, Weight: 1},
		{TokenID: "T", HolderID: "bob", Start: 90, End: 150, HasEnd: true, Weight: 0.3},
		{TokenID: "V", HolderID: "carol", Start: 1, End: 2, HasEnd: true, Weight: 3},
	}
	if _, err := a.RecordAt(100, evs, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CloseHoldAt(120, "U", "alice", 110); err != nil {
		t.Fatal(err)
	}
	states, m, err := a.Export()
	if err != nil {
		t.Fatal(err)
	}
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
		want, _ := a.Snapshot(now)
		got, _ := b.Snapshot(now)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("now %d: snapshot after import\n got %+v\nwant %+v", now, got, want)
		}
		wantT, _ := a.TopN(2, now, "T")
		gotT, _ := b.TopN(2, now, "T")
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
		if _, err := x.RecordAt(300, more, false); err != nil {
			t.Fatal(err)
		}
		if _, err := x.CloseHoldAt(301, "T", "bob", 200); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := a.Snapshot(400)
	got, _ := b.Snapshot(400)
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
			Open: []OpenHoldState{{Start: 1, Weight: -1}}}}}}},
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
