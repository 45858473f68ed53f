package core

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// QueryColumns answers every query with Query's rows: the same rows, bits
// (exact scores too), updated_at and order, ranked or not, on holders with
// several tokens, live holds and tied scores (zero weights), in both modes.
func TestQueryColumnsIsQuery(t *testing.T) {
	for _, exact := range []bool{false, true} {
		r := rand.New(rand.NewPCG(7, uint64(len("columns"))))
		a := newAgg(t, Options{History: true, Exact: exact})
		const now = 6000
		events := randomKernelEvents(r, 6000, 700, 5, exact, now)
		for i := range events {
			if i%11 == 0 {
				events[i].Weight, events[i].Wei = 0, nil // ties at score 0
			}
		}
		for lo := 0; lo < len(events); lo += 500 { // several writes: several updated_at
			if _, err := a.Record(now-int64(len(events)-lo), events[lo:lo+500], RecordOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		rows, _ := a.Query(Query{Now: now})
		queries := []Query{
			{Now: now}, {Now: now + 5000}, {Now: now, Unordered: true}, {Now: now, N: 10},
			{Now: now, Token: "T1"}, {Now: now, Holder: rows[3].HolderID}, {Now: now, Holder: "nobody"},
			{Now: now, Window: &Window{Start: 2000, End: 9000}}, {Now: now, Window: &Window{Start: 2000, End: 9000}, Unordered: true},
		}
		for _, q := range queries {
			want, err := a.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			g, err := a.QueryColumns(q)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]HolderStat, g.Len())
			for i := range got {
				got[i] = g.Row(i)
			}
			if q.Unordered {
				byID := func(x, y HolderStat) int { return strings.Compare(x.HolderID, y.HolderID) }
				slices.SortFunc(want, byID)
				slices.SortFunc(got, byID)
			}
			if len(got) != len(want) || (q.Holder == "" && q.Token == "" && q.N == 0 && len(got) != a.Len()) {
				t.Fatalf("exact=%v %+v: %d rows, Query has %d (%d holders)", exact, q, len(got), len(want), a.Len())
			}
			ties := 0
			for i := range want {
				w, x := want[i], got[i]
				if i > 0 && w.Score == want[i-1].Score {
					ties++
				}
				if (w.Exact == nil) != (x.Exact == nil) || (w.Exact != nil && w.Exact.Cmp(x.Exact) != 0) {
					t.Fatalf("exact=%v %+v row %d: exact score %v, Query's %v", exact, q, i, x.Exact, w.Exact)
				}
				w.Exact, x.Exact = nil, nil
				if w != x {
					t.Fatalf("exact=%v %+v row %d:\n got %+v\nwant %+v", exact, q, i, x, w)
				}
			}
			if q == (Query{Now: now}) && ties < 10 {
				t.Fatalf("only %d tied scores: the ties' order is not tested", ties)
			}
		}
		if _, err := a.QueryColumns(Query{Now: -1}); err == nil {
			t.Fatal("QueryColumns took now -1")
		}
	}
}
