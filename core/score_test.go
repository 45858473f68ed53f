package core

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestScoreEdges(t *testing.T) {
	tests := []struct {
		name   string
		events []HoldEvent
		now    int64
		want   float64
	}{
		{"nil", nil, 10, 0},
		{"open", []HoldEvent{ev("T", "a", 3, 0, false, 2)}, 10, 14},
		{"end in the future", []HoldEvent{ev("T", "a", 3, 50, true, 1)}, 10, 7},
		{"start in the future", []HoldEvent{ev("T", "a", 30, 50, true, 1), ev("T", "a", 30, 0, false, 1)}, 10, 0},
		{"zero weight", []HoldEvent{ev("T", "a", 0, 10, true, 0)}, 10, 0},
		{"now zero", []HoldEvent{ev("T", "a", 0, 10, true, 1)}, 0, 0},
		{"max span", []HoldEvent{ev("T", "a", 0, MaxTime, true, MaxWeight)}, MaxTime, float64(MaxTime) * MaxWeight},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scoreAt(tc.events, tc.now)
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			got, err = scoreColumnsAt(toColumns(tc.events), tc.now)
			if err != nil || got != tc.want {
				t.Fatalf("columns: got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// exactScore is the integer-rational reference: every float64 term is an
// exact rational, so the exact sum, rounded once, is the best possible answer.
func exactScore(events []HoldEvent, now int64) float64 {
	sum := new(big.Rat)
	for _, e := range events {
		d := All.held(e.Start, e.End, e.HasEnd, now)
		term := new(big.Rat).SetFloat64(float64(d) * e.Weight) // the term as computed
		sum.Add(sum, term)
	}
	f, _ := sum.Float64()
	return f
}

func ulpDiff(a, b float64) uint64 {
	x, y := math.Float64bits(a), math.Float64bits(b)
	if x > y {
		return x - y
	}
	return y - x
}

func TestScoreCompensatedWithinOneULP(t *testing.T) {
	cases := map[string]func(i int) HoldEvent{
		"many tiny weights": func(i int) HoldEvent { return ev("T", "a", 0, 1, true, 1e-10) },
		"one big then tiny": func(i int) HoldEvent {
			if i == 0 {
				return ev("T", "a", 0, MaxTime, true, 1e12)
			}
			return ev("T", "a", 0, 1, true, 0.1)
		},
		"alternating scales": func(i int) HoldEvent {
			return ev("T", "a", 0, int64(1+i%1000), true, math.Ldexp(1, (i%7)*13-40))
		},
		"irrational-ish weights": func(i int) HoldEvent {
			return ev("T", "a", int64(i), int64(i)+7, true, 1/3.0+float64(i)*math.Pi*1e-9)
		},
	}
	for name, gen := range cases {
		t.Run(name, func(t *testing.T) {
			events := make([]HoldEvent, 100_000)
			for i := range events {
				events[i] = gen(i)
			}
			got, err := scoreAt(events, MaxTime)
			if err != nil {
				t.Fatal(err)
			}
			want := exactScore(events, MaxTime)
			if d := ulpDiff(got, want); d > 1 {
				t.Fatalf("score %v is %d ulps from exact %v", got, d, want)
			}
		})
	}
	// The check discriminates: plain left-to-right summation of the first
	// case is several ulps off, so an uncompensated Score would fail above.
	events := make([]HoldEvent, 100_000)
	naive := 0.0
	for i := range events {
		events[i] = ev("T", "a", 0, 1, true, 1e-10)
		naive += 1e-10
	}
	if d := ulpDiff(naive, exactScore(events, 1)); d <= 1 {
		t.Fatalf("naive sum is only %d ulps off; the test would not catch a missing compensation", d)
	}
}

func TestScoreRandomAgainstExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		n := r.IntN(2000)
		now := r.Int64N(MaxTime + 1)
		events := make([]HoldEvent, n)
		for i := range events {
			s := r.Int64N(MaxTime + 1)
			e := s + r.Int64N(MaxTime-s+1)
			events[i] = ev("T", "a", s, e, r.IntN(3) > 0, r.ExpFloat64()*math.Pow(10, float64(r.IntN(20)-10)))
		}
		got, err := scoreAt(events, now)
		if err != nil {
			t.Fatal(err)
		}
		if want := exactScore(events, now); ulpDiff(got, want) > 1 {
			t.Fatalf("round %d: %v vs exact %v", round, got, want)
		}
		gotC, err := scoreColumnsAt(toColumns(events), now)
		if err != nil || math.Float64bits(gotC) != math.Float64bits(got) {
			t.Fatalf("columns %v (%v) differ from events %v", gotC, err, got)
		}
	}
}

func TestScoreColumnsShapes(t *testing.T) {
	start := []int64{0, 10, 20}
	// nil End: all open; nil Weight: 1.0.
	got, err := scoreColumnsAt(&Columns{Start: start}, 30)
	if err != nil || got != 30+20+10 {
		t.Fatalf("all open: %v %v", got, err)
	}
	// End without mask: all closed.
	got, err = scoreColumnsAt(&Columns{Start: start, End: []int64{5, 15, 25}, Weight: []float64{1, 2, 3}}, 30)
	if err != nil || got != 5+10+15 {
		t.Fatalf("all closed: %v %v", got, err)
	}
	// Mask picks open rows.
	got, err = scoreColumnsAt(&Columns{Start: start, End: []int64{5, -999, 25}, HasEnd: []uint8{1, 0, 1}}, 30)
	if err != nil || got != 5+20+5 {
		t.Fatalf("masked: %v %v", got, err)
	}
	bad := []*Columns{
		{Start: start, End: []int64{1}},
		{Start: start, HasEnd: []uint8{1, 1, 1}},
		{Start: start, Weight: []float64{1}},
		{Start: start, Token: IDColumn{Data: []byte("ab"), Offsets: []int64{0, 1}}},
		{Start: start, Token: IDColumn{Data: []byte("abc"), Offsets: []int64{0, 1, 5, 3}}},
		{Start: start, Token: IDColumn{Data: []byte("abc"), Offsets: []int64{1, 1, 2, 3}}},
		{Start: start, Token: IDColumn{Data: []byte("abc"), Offsets: []int64{0, 2, 1, 3}}},
	}
	for i, c := range bad {
		if _, err := scoreColumnsAt(c, 30); err == nil {
			t.Errorf("bad columns %d accepted", i)
		}
		if _, err := c.Events(nil); err == nil {
			t.Errorf("bad columns %d converted to events", i)
		}
	}
}
