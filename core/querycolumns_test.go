package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
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
			var alloc ColumnAlloc
			if len(want)%2 == 0 {
				alloc = &dirtyAlloc{}
			}
			g, err := a.QueryColumns(q, alloc)
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
		if _, err := a.QueryColumns(Query{Now: -1}, nil); err == nil {
			t.Fatal("QueryColumns took now -1")
		}
	}
}

// dirtyAlloc hands out memory filled with garbage (QueryColumns must write
// every element it uses) and remembers each block.
type dirtyAlloc struct{ blocks [][]byte }

func (d *dirtyAlloc) Bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xa5
	}
	d.blocks = append(d.blocks, b)
	return b
}

func (d *dirtyAlloc) Float64s(n int) []float64 {
	b := d.Bytes(8 * n)
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

func (d *dirtyAlloc) Int64s(n int) []int64 {
	b := d.Bytes(8 * n)
	return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// owns reports whether p is inside one of d's blocks.
func (d *dirtyAlloc) owns(p unsafe.Pointer) bool {
	for _, b := range d.blocks {
		if len(b) > 0 && uintptr(p) >= uintptr(unsafe.Pointer(&b[0])) && uintptr(p) < uintptr(unsafe.Pointer(&b[0]))+uintptr(len(b)) {
			return true
		}
	}
	return false
}

// A snapshot's columns are all in the allocator's memory, ids included
// (sized from the shards' live id bytes, so also after holders were
// dropped and their ids copied into fresh chunks), ranked or not; the rows
// are Query's.
func TestQueryColumnsAlloc(t *testing.T) {
	a := newAgg(t, Options{TTL: 100 * time.Second, Shards: 2})
	var events []HoldEvent
	for i := range 3000 {
		e := HoldEvent{TokenID: "T", HolderID: fmt.Sprintf("h%d-%s", i, strings.Repeat("x", i%40)), Start: int64(i), Weight: 1}
		if i%3 != 0 {
			e.End, e.HasEnd = int64(i+5), true
		}
		events = append(events, e)
	}
	if _, err := a.Record(4000, events, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Record(5000, []HoldEvent{{TokenID: "T", HolderID: "late", Start: 4900, Weight: 2}}, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	dropped, err := a.GC(5000)
	if err != nil || dropped != 2000 {
		t.Fatalf("GC dropped %d (%v), want the 2000 closed holders", dropped, err)
	}
	for _, unordered := range []bool{false, true} {
		q := Query{Now: 6000, Unordered: unordered}
		want, _ := a.Query(q)
		d := &dirtyAlloc{}
		g, err := a.QueryColumns(q, d)
		if err != nil {
			t.Fatal(err)
		}
		if g.Len() != len(want) || len(want) != 1001 {
			t.Fatalf("unordered=%v: %d rows, Query has %d", unordered, g.Len(), len(want))
		}
		for name, p := range map[string]unsafe.Pointer{"score": unsafe.Pointer(&g.Score[0]),
			"total_seconds": unsafe.Pointer(&g.TotalSeconds[0]), "updated_at": unsafe.Pointer(&g.UpdatedAt[0]),
			"ids": unsafe.Pointer(&g.Holders.Data[0]), "id offsets": unsafe.Pointer(&g.Holders.Offsets[0])} {
			if !d.owns(p) {
				t.Fatalf("unordered=%v: the %s column is not the allocator's", unordered, name)
			}
		}
		if !unordered {
			for i := range want {
				if got := g.Row(i); got != want[i] {
					t.Fatalf("row %d: %+v, want %+v", i, got, want[i])
				}
			}
		}
	}
}
