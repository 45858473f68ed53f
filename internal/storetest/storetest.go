// Package storetest holds what the tests of every store share: a random
// workload driven through a core.Writer and an in-memory twin, and the
// bit-for-bit comparison of two aggregators (their exported state).
package storetest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// NewAgg is an aggregator closed when tb ends.
func NewAgg(tb testing.TB, o core.Options) *core.Aggregator {
	tb.Helper()
	if o.Shards == 0 {
		o.Shards = 8
	}
	a, err := core.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

// Workload sends n random writes (records, partial records with invalid
// events, closes, GCs) through w and the same to twin, failing tb where
// they disagree. Times start at base.
func Workload(tb testing.TB, w core.Writer, twin *core.Aggregator, seed uint64, n int, base int64) {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < n; i++ {
		now := base + int64(i)
		switch r.IntN(10) {
		case 0:
			tok, h := fmt.Sprintf("T%d", r.IntN(3)), fmt.Sprintf("h%d", r.IntN(20))
			_, err1 := w.CloseHold(now, tok, h, now)
			_, err2 := twin.CloseHold(now, tok, h, now)
			if (err1 == nil) != (err2 == nil) {
				tb.Fatalf("write %d close: store %v, twin %v", i, err1, err2)
			}
		case 1:
			_, err1 := w.GC(now + 500)
			_, err2 := twin.GC(now + 500)
			if err1 != nil || err2 != nil {
				tb.Fatalf("write %d gc: %v %v", i, err1, err2)
			}
		default:
			evs := Events(r, 1+r.IntN(5))
			partial := r.IntN(2) == 0
			n1, err1 := core.RecordAndWait(w, now, evs, core.RecordOptions{Partial: partial})
			n2, err2 := twin.Record(now, evs, core.RecordOptions{Partial: partial})
			if n1 != n2 || (err1 == nil) != (err2 == nil) {
				tb.Fatalf("write %d record: store %d %v, twin %d %v", i, n1, err1, n2, err2)
			}
		}
	}
}

// Events is n random events over 3 tokens and 20 holders, about one in 30
// invalid (a negative weight).
func Events(r *rand.Rand, n int) []core.HoldEvent {
	evs := make([]core.HoldEvent, n)
	for j := range evs {
		st := int64(r.IntN(1000))
		evs[j] = core.HoldEvent{TokenID: fmt.Sprintf("T%d", r.IntN(3)), HolderID: fmt.Sprintf("h%d", r.IntN(20)),
			Start: st, Weight: r.Float64() * 10}
		if r.IntN(2) == 0 {
			evs[j].End, evs[j].HasEnd = st+int64(r.IntN(500)), true
		}
		if r.IntN(30) == 0 {
			evs[j].Weight = -1
		}
	}
	return evs
}

// SameState fails tb unless got and want hold the same state, bit for bit
// (sums with their compensation terms, updated_at, metric counters).
func SameState(tb testing.TB, got, want *core.Aggregator) {
	tb.Helper()
	g, gm, err1 := got.Export()
	w, wm, err2 := want.Export()
	if err1 != nil || err2 != nil {
		tb.Fatal(err1, err2)
	}
	for _, hs := range [][]core.HolderState{g, w} {
		sort.Slice(hs, func(i, j int) bool { return hs[i].HolderID < hs[j].HolderID })
	}
	for i := 0; i < max(len(g), len(w)); i++ {
		switch {
		case i >= len(g):
			tb.Fatalf("states differ: holder %q is missing", w[i].HolderID)
		case i >= len(w):
			tb.Fatalf("states differ: holder %q should not be there", g[i].HolderID)
		case !reflect.DeepEqual(g[i], w[i]):
			tb.Fatalf("states differ at holder %d:\n got %+v\nwant %+v", i, g[i], w[i])
		}
	}
	if gm.Accepted != wm.Accepted || gm.Evicted != wm.Evicted {
		tb.Fatalf("metric counters differ: got %+v, want %+v", gm, wm)
	}
}
