package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

type windowVector struct {
	vector
	Window    [2]int64 `json:"window"`
	TWAB      *float64 `json:"twab"`
	TWABError *struct {
		Index  int    `json:"index"`
		Field  string `json:"field"`
		Reason Reason `json:"reason"`
	} `json:"twab_error"`
}

func loadWindowVectors(t *testing.T) []windowVector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "window_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []windowVector }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) < 10 {
		t.Fatalf("only %d window vectors", len(f.Vectors))
	}
	return f.Vectors
}

func TestWindowVectors(t *testing.T) {
	for _, v := range loadWindowVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			events := make([]HoldEvent, len(v.Events))
			for i, ve := range v.Events {
				events[i] = ve.event(t)
			}
			w := Window{v.Window[0], v.Window[1]}
			got, err := scoreF(events, ScoreOptions{Now: v.Now, Window: &w})
			checkVectorResult(t, v.vector, got, err)
			got, err = scoreColumnsF(toColumns(events), ScoreOptions{Now: v.Now, Window: &w})
			checkVectorResult(t, v.vector, got, err)

			tv := v.vector
			tv.Score = v.TWAB
			if v.TWABError != nil {
				tv.Error = v.TWABError
			}
			tw, err := scoreF(events, ScoreOptions{Now: v.Now, Window: &w, TWAB: true})
			checkVectorResult(t, tv, tw, err)
			tw, err = scoreColumnsF(toColumns(events), ScoreOptions{Now: v.Now, Window: &w, TWAB: true})
			checkVectorResult(t, tv, tw, err)
		})
	}
}

func TestWindowErrorNamesBothValues(t *testing.T) {
	_, err := scoreF(nil, ScoreOptions{Now: 10, Window: &Window{200, 100}})
	if err == nil || err.Error() != "window [200, 100): end 100 is before start 200" {
		t.Fatalf("got %v", err)
	}
}

func randomDyadicEvents(r *rand.Rand, n int, span int64) []HoldEvent {
	out := make([]HoldEvent, n)
	for i := range out {
		s := r.Int64N(span)
		out[i] = HoldEvent{TokenID: fmt.Sprint("t", r.IntN(3)), HolderID: fmt.Sprint("h", r.IntN(20)),
			Start: s, Weight: dyadic[r.IntN(len(dyadic))]}
		if r.IntN(4) > 0 {
			out[i].End, out[i].HasEnd = s+r.Int64N(span/4+1), true
		}
	}
	return out
}

// Windowed scores are additive: [a, c) = [a, b) + [b, c).
func TestWindowAdditive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 300; round++ {
		events := randomDyadicEvents(r, r.IntN(200), 10_000)
		now := r.Int64N(12_000)
		a := r.Int64N(10_000)
		b := a + r.Int64N(5_000)
		c := b + r.Int64N(5_000)
		whole, err1 := scoreF(events, ScoreOptions{Now: now, Window: &Window{a, c}})
		left, err2 := scoreF(events, ScoreOptions{Now: now, Window: &Window{a, b}})
		right, err3 := scoreF(events, ScoreOptions{Now: now, Window: &Window{b, c}})
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		if whole != left+right {
			t.Fatalf("round %d: [%d,%d)=%v but [%d,%d)+[%d,%d)=%v+%v", round, a, c, whole, a, b, b, c, left, right)
		}
	}
}

// With History, a live aggregator answers any window exactly as the batch
// calculation over the same events does.
func TestWindowQueryMatchesBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 50; round++ {
		events := randomDyadicEvents(r, 1+r.IntN(300), 10_000)
		a := newAgg(t, Options{History: true})
		// record in several batches, closing some open holds on the way
		var recorded []HoldEvent
		for lo := 0; lo < len(events); {
			hi := min(len(events), lo+1+r.IntN(50))
			if _, err := a.Record(1, events[lo:hi], RecordOptions{}); err != nil {
				t.Fatal(err)
			}
			recorded = append(recorded, events[lo:hi]...)
			lo = hi
			if r.IntN(3) == 0 {
				e := recorded[r.IntN(len(recorded))]
				if !e.HasEnd {
					at := e.Start + r.Int64N(3000)
					if _, err := a.CloseHold(1, e.TokenID, e.HolderID, at); err == nil {
						recorded = closeInModel(recorded, e.TokenID, e.HolderID, at)
					}
				}
			}
		}
		now := r.Int64N(12_000)
		w := Window{r.Int64N(8000), 0}
		w.End = w.Start + r.Int64N(4000)
		rows, err := a.Query(Query{Now: now, Window: &w})
		if err != nil {
			t.Fatal(err)
		}
		byHolder := map[string][]HoldEvent{}
		for _, e := range recorded {
			byHolder[e.HolderID] = append(byHolder[e.HolderID], e)
		}
		if len(rows) != len(byHolder) {
			t.Fatalf("%d rows for %d holders", len(rows), len(byHolder))
		}
		for _, row := range rows {
			want, _ := scoreF(byHolder[row.HolderID], ScoreOptions{Now: now, Window: &w})
			if row.Score != want {
				t.Fatalf("round %d holder %s: window score %v, batch %v", round, row.HolderID, row.Score, want)
			}
		}
		// TopNWindow with a token filter agrees too.
		top, err := a.Query(Query{N: 5, Now: now, Token: "t1", Window: &w})
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range top {
			var mine []HoldEvent
			for _, e := range byHolder[row.HolderID] {
				if e.TokenID == "t1" {
					mine = append(mine, e)
				}
			}
			if want, _ := scoreF(mine, ScoreOptions{Now: now, Window: &w}); row.Score != want {
				t.Fatalf("top row %+v, batch %v", row, want)
			}
		}
	}
}

// closeInModel gives every open hold of the pair the end at, as CloseHold does.
func closeInModel(events []HoldEvent, token, holder string, at int64) []HoldEvent {
	out := append([]HoldEvent(nil), events...)
	for i := range out {
		if out[i].TokenID == token && out[i].HolderID == holder && !out[i].HasEnd {
			out[i].End, out[i].HasEnd = at, true
		}
	}
	return out
}

func TestWindowQueriesNeedHistory(t *testing.T) {
	a := newAgg(t, Options{})
	if _, err := a.Query(Query{Now: 10, Window: &Window{0, 5}}); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("got %v", err)
	}
	if _, err := a.Query(Query{N: 1, Now: 10, Token: "", Window: &Window{0, 5}}); !errors.Is(err, ErrNoHistory) {
		t.Fatalf("got %v", err)
	}
	h := newAgg(t, Options{History: true})
	if _, err := h.Query(Query{Now: 10, Window: &Window{5, 0}}); err == nil {
		t.Fatal("bad window accepted")
	}
}

// A campaign window fixed at creation clips at record time; for any now at
// or after every end the totals equal the batch windowed score.
func TestCampaignWindow(t *testing.T) {
	w := Window{1000, 2000}
	if _, err := New(Options{Window: &Window{5, 1}}); err == nil {
		t.Fatal("invalid campaign window accepted")
	}
	r := rand.New(rand.NewPCG(8, 9))
	for round := 0; round < 50; round++ {
		a := newAgg(t, Options{Window: &w})
		events := randomDyadicEvents(r, 1+r.IntN(200), 3000)
		if _, err := a.Record(1, events, RecordOptions{}); err != nil {
			t.Fatal(err)
		}
		now := int64(5000) // after every end
		rows, _ := snapshot(a, now)
		total := 0.0
		for _, row := range rows {
			total += row.Score
		}
		want, _ := scoreF(events, ScoreOptions{Now: now, Window: &w})
		if math.Abs(total-want) > 1e-9*math.Max(1, want) {
			t.Fatalf("campaign total %v, batch %v", total, want)
		}
	}
	// Open holds clip when read; CloseHold clips too.
	a := newAgg(t, Options{Window: &w})
	_ = recordNow(a, HoldEvent{TokenID: "T", HolderID: "x", Start: 500, Weight: 2})
	for _, tc := range []struct {
		now  int64
		want float64
	}{{900, 0}, {1500, 1000}, {9000, 2000}} {
		rows, _ := snapshot(a, tc.now)
		if rows[0].Score != tc.want {
			t.Fatalf("now %d: %v, want %v", tc.now, rows[0].Score, tc.want)
		}
	}
	_, _ = a.CloseHold(a.Now(), "T", "x", 1200)
	rows, _ := snapshot(a, 9000)
	if rows[0].Score != 400 || rows[0].TotalSeconds != 200 {
		t.Fatalf("after close: %+v", rows[0])
	}
}
