package core

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// Tests of the paths that take a shortcut (issue 18): one event without the
// batch machinery, unordered and key-sorted queries, the intern table, holder
// slabs, the word-at-a-time address test. Each is checked against the path
// it replaces, bit for bit, errors and metrics included.

// fastGen draws events that exercise every branch of recording one event:
// new and known holders and pairs, closed, open and future-ended holds,
// addresses in mixed case, and invalid events of every kind.
func fastGen(r *rand.Rand, now int64, exact bool) HoldEvent {
	holders := []string{"alice", "bob", "0xAbCdEf0123456789abcdef0123456789ABCDEF01",
		"0xabcdef0123456789abcdef0123456789abcdef01", fmt.Sprintf("h%d", r.IntN(50))}
	tokens := []string{"T", "U", "0x00000000000000000000000000000000000000AA", fmt.Sprintf("t%d", r.IntN(20))}
	s := now - 500 + r.Int64N(1000)
	e := HoldEvent{TokenID: tokens[r.IntN(len(tokens))], HolderID: holders[r.IntN(len(holders))],
		Start: s, Weight: dyadic[r.IntN(len(dyadic))]}
	if r.IntN(4) > 0 {
		e.End, e.HasEnd = s+r.Int64N(300), true
	}
	if exact && r.IntN(3) == 0 {
		var w Wei
		w[0], w[31] = byte(r.IntN(2)), byte(r.IntN(256)) // up to 2^248: beyond any float
		e.Wei, e.Weight = &w, 0
	}
	switch r.IntN(14) { // the invalid ones
	case 0:
		e.TokenID = ""
	case 1:
		e.HolderID = strings.Repeat("x", MaxIDBytes+1)
	case 2:
		e.HolderID = "bad\xff"
	case 3:
		e.Start = -1
	case 4:
		e.End, e.HasEnd = e.Start-1, true
	case 5:
		e.Weight = math.NaN()
	case 6:
		e.Weight = 0.5 // not an integer: refused in exact mode only
	}
	return e
}

// sortedExport is a's exported state in holder order, and its metrics text.
func sortedExport(t *testing.T, a *Aggregator) ([]HolderState, MetricsState, string) {
	t.Helper()
	states, m, err := a.Export()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(states, func(x, y HolderState) int { return strings.Compare(x.HolderID, y.HolderID) })
	text, err := a.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	return states, m, text
}

func TestRecordOneMatchesBatchPath(t *testing.T) {
	camp := Window{200, 1_500}
	for name, opts := range map[string]Options{"float": {}, "exact": {Exact: true}, "window": {Window: &camp},
		"history+ttl": {History: true, TTL: 300 * time.Second}, "one-shard": {Shards: 1}} {
		t.Run(name, func(t *testing.T) {
			fast, batch := newAgg(t, opts), newAgg(t, opts)
			r := rand.New(rand.NewPCG(18, 1))
			now := int64(1_000)
			for i := range 3_000 {
				if r.IntN(3) == 0 {
					now += r.Int64N(100)
				}
				at := now
				if r.IntN(50) == 0 {
					at = -5 // a bad now
				}
				e := fastGen(r, now, opts.Exact)
				o := RecordOptions{Partial: r.IntN(2) == 0}
				n1, err1 := fast.Record(at, []HoldEvent{e}, o)
				n2, err2 := batch.recordBatch(at, []HoldEvent{e}, o)
				if n1 != n2 || !reflect.DeepEqual(err1, err2) {
					t.Fatalf("event %d %+v at %d (%+v): one-event path (%d, %v), batch path (%d, %v)",
						i, e, at, o, n1, err1, n2, err2)
				}
				switch r.IntN(40) { // other writes in between, alike on both
				case 0:
					for _, a := range []*Aggregator{fast, batch} {
						_, _ = a.CloseHold(now, e.TokenID, e.HolderID, now)
					}
				case 1:
					for _, a := range []*Aggregator{fast, batch} {
						_, _ = a.GC(now)
					}
				}
			}
			s1, m1, text1 := sortedExport(t, fast)
			s2, m2, text2 := sortedExport(t, batch)
			if !reflect.DeepEqual(s1, s2) || !reflect.DeepEqual(m1, m2) {
				t.Fatalf("states differ:\none-event %+v\nbatch     %+v", s1, s2)
			}
			if text1 != text2 {
				t.Fatalf("metrics differ:\none-event:\n%s\nbatch:\n%s", text1, text2)
			}
			for _, q := range []Query{{Now: now}, {Now: now + 1_000, Token: "T"}, {Now: now, Unordered: true}} {
				r1, err1 := fast.Query(q)
				r2, err2 := batch.Query(q)
				if err1 != nil || err2 != nil || !reflect.DeepEqual(r1, r2) {
					t.Fatalf("query %+v: %v %v\n%+v\n%+v", q, err1, err2, r1, r2)
				}
			}
		})
	}
}

func TestRecordEventWriter(t *testing.T) {
	a, b := newAgg(t, Options{}), newAgg(t, Options{})
	r := rand.New(rand.NewPCG(18, 2))
	for i := range 500 {
		e := fastGen(r, 1_000, false)
		err1 := RecordEvent(Memory(a), 1_000+int64(i), e)
		_, err2 := b.Record(1_000+int64(i), []HoldEvent{e}, RecordOptions{})
		if !reflect.DeepEqual(err1, err2) {
			t.Fatalf("event %+v: RecordEvent %v, Record %v", e, err1, err2)
		}
	}
	s1, _, text1 := sortedExport(t, a)
	s2, _, text2 := sortedExport(t, b)
	if !reflect.DeepEqual(s1, s2) || text1 != text2 {
		t.Fatal("RecordEvent and Record of one-event batches left different states")
	}
	_ = a.Close()
	if err := RecordEvent(Memory(a), 1, HoldEvent{TokenID: "T", HolderID: "a", Weight: 1}); err != ErrClosed {
		t.Fatalf("closed: %v", err)
	}
	if _, err := a.Record(1, []HoldEvent{{TokenID: "T", HolderID: "a", Weight: 1}}, RecordOptions{}); err != ErrClosed {
		t.Fatalf("closed, one event: %v", err)
	}
}

// A strict one-event batch that is refused counts one rejected event and no
// dropped one; a partial one reports it in a BatchError. (Checked against
// the batch path above; here against the numbers.)
func TestRecordOneCountsRejections(t *testing.T) {
	a := newAgg(t, Options{})
	bad := HoldEvent{TokenID: "T", HolderID: "a", Start: 5, End: 1, HasEnd: true, Weight: 1}
	if _, err := a.Record(10, []HoldEvent{bad}, RecordOptions{}); err == nil || !strings.Contains(err.Error(), "event 0: end") {
		t.Fatalf("strict: %v", err)
	}
	n, err := a.Record(10, []HoldEvent{bad}, RecordOptions{Partial: true})
	var be *BatchError
	if n != 0 || !asBatchError(err, &be) || len(be.Errors) != 1 || be.Errors[0].Index != 0 {
		t.Fatalf("partial: %d, %v", n, err)
	}
	text, _ := a.MetricsText()
	for _, want := range []string{`poh_hold_events_total{result="rejected"} 2`, `poh_hold_events_total{result="dropped"} 0`} {
		if !strings.Contains(text, want) {
			t.Fatalf("metrics lack %s:\n%s", want, text)
		}
	}
}

func asBatchError(err error, be **BatchError) bool {
	b, ok := err.(*BatchError)
	*be = b
	return ok
}

func TestUnorderedQueryHasTheRankedRows(t *testing.T) {
	for _, opts := range []Options{{History: true}, {Exact: true, History: true}} {
		a := newAgg(t, opts)
		r := rand.New(rand.NewPCG(18, 3))
		var evs []HoldEvent
		for range 4_000 {
			if e := fastGen(r, 10_000, opts.Exact); a.cfg.validate(&e, 0) == nil {
				evs = append(evs, e)
			}
		}
		for i := range 300 { // more holders than the short-sort cut-off, and equal scores
			evs = append(evs, HoldEvent{TokenID: "T", HolderID: fmt.Sprintf("same%03d", 299-i), Start: 0, End: 10,
				HasEnd: true, Weight: 1})
		}
		if _, err := a.Record(10_000, evs, RecordOptions{}); err != nil {
			t.Fatal(err)
		}
		w := Window{9_700, 10_200}
		less := statLess
		if opts.Exact {
			less = exactLess
		}
		for _, q := range []Query{{Now: 10_100}, {Now: 10_100, Token: "T"}, {Now: 20_000, Window: &w}} {
			ranked, err := a.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSortedFunc(ranked, func(x, y HolderStat) int { return less(&x, &y) }) {
				t.Fatalf("%+v: ranked rows out of order", q)
			}
			q.Unordered = true
			rows, err := a.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(rows, func(x, y HolderStat) int { return less(&x, &y) })
			if !reflect.DeepEqual(rows, ranked) {
				t.Fatalf("%+v: unordered rows, sorted, differ from the ranking", q)
			}
			q.N = 7 // with N, the first N of the ranking, in order
			top, err := a.Query(q)
			if err != nil || !reflect.DeepEqual(top, ranked[:7]) {
				t.Fatalf("%+v: %v\n%+v\nwant %+v", q, err, top, ranked[:7])
			}
		}
	}
}

// sortRows' key sort agrees with sorting the rows by statLess, for scores
// with many ties, zeros of both signs, infinities and NaN.
func TestSortRowsMatchesStatLess(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 4))
	scores := []float64{0, math.Copysign(0, -1), 1, 1.5, math.Inf(1), math.NaN(), 1e300, 5e-324}
	for _, n := range []int{0, 1, 63, 64, 65, 1_000, 5_000} {
		rows := make([]HolderStat, n)
		for i := range rows {
			rows[i] = HolderStat{HolderID: fmt.Sprintf("%05d", r.IntN(100_000)) + fmt.Sprint(i), Score: scores[r.IntN(len(scores))]}
			if r.IntN(2) == 0 {
				rows[i].Score = float64(r.IntN(20))
			}
		}
		want := slices.Clone(rows)
		slices.SortFunc(want, func(x, y HolderStat) int { return statLess(&x, &y) })
		got := view{}.sortRows(rows)
		for i := range want {
			if got[i].HolderID != want[i].HolderID || math.Float64bits(got[i].Score) != math.Float64bits(want[i].Score) {
				t.Fatalf("n %d: row %d is %+v, want %+v", n, i, got[i], want[i])
			}
		}
	}
}

func TestInternTable(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 5))
	var tab internTable
	ref := map[string]string{}
	for i := range 20_000 {
		n := 1 + r.IntN(20)
		if i%97 == 0 {
			n = MaxIDBytes // long ids cross chunk boundaries
		}
		buf := []byte(fmt.Sprintf("%0*d", n, r.IntN(3_000)))
		id := string(buf)
		got := tab.get(unsafe.String(&buf[0], len(buf))) // the caller's memory, as the C API passes it
		clear(buf)                                       // the copy must not alias it
		if got != id {
			t.Fatalf("intern %q = %q", id, got)
		}
		if first, ok := ref[id]; ok {
			if unsafe.StringData(first) != unsafe.StringData(got) {
				t.Fatalf("%q interned twice", id)
			}
		} else {
			ref[id] = got
		}
	}
	if tab.n != len(ref) {
		t.Fatalf("%d interned, want %d", tab.n, len(ref))
	}
	for id, first := range ref {
		if first != id {
			t.Fatalf("interned copy of %q changed to %q", id, first)
		}
	}
	for _, c := range tab.chunks {
		if cap(c) > internChunk {
			t.Fatalf("a chunk of %d bytes", cap(c))
		}
	}
}

// Dropped holders' memory is reused by new ones, and every way of walking a
// shard (the table, memory order) still visits every live holder once.
func TestHolderSlabsReuseDroppedHolders(t *testing.T) {
	a := newAgg(t, Options{TTL: 10, Shards: 1})
	sh := &a.shards[0]
	record := func(now int64, prefix string, n int) {
		evs := make([]HoldEvent, n)
		for i := range evs {
			evs[i] = HoldEvent{TokenID: "T", HolderID: fmt.Sprintf("%s%d", prefix, i), Start: 0, End: 5, HasEnd: true, Weight: 1}
		}
		if _, err := a.Record(now, evs, RecordOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	walk := func() (byTable, byMemory []string) {
		sh.all(func(h *holder) { byTable = append(byTable, h.id) })
		sh.live(func(h *holder) { byMemory = append(byMemory, h.id) })
		slices.Sort(byTable)
		slices.Sort(byMemory)
		return
	}
	record(100, "old", 100)
	record(150, "kept", 10)
	if n, _ := a.GC(150); n != 100 {
		t.Fatalf("GC dropped %d, want 100", n)
	}
	if len(sh.free) != 100 {
		t.Fatalf("%d holders kept for reuse, want 100", len(sh.free))
	}
	slabs := len(sh.slabs)
	record(160, "new", 80)
	if len(sh.free) != 20 || len(sh.slabs) != slabs {
		t.Fatalf("new holders took fresh memory: %d free, %d slabs (was %d)", len(sh.free), len(sh.slabs), slabs)
	}
	byTable, byMemory := walk()
	if len(byTable) != 90 || !slices.Equal(byTable, byMemory) {
		t.Fatalf("walks differ:\n%v\n%v", byTable, byMemory)
	}
	rows, _ := snapshot(a, 160)
	for _, st := range rows {
		if st.Events != 1 || st.Tokens != 1 || st.Score != 5 {
			t.Fatalf("a reused holder kept old state: %+v", st)
		}
	}
	if n, _ := a.GC(1_000); n != 90 || len(sh.slabs) != 0 || len(sh.free) != 0 || sh.tokens.n != 0 {
		t.Fatalf("an emptied shard keeps memory: dropped %d, %d slabs, %d free, %d tokens", n, len(sh.slabs),
			len(sh.free), sh.tokens.n)
	}
}

func TestNeedsCanonMatchesDefinition(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			for _, fill := range []byte{'0', 'a', 'G', '@', 0x00, 0xff, 'F'} {
				var w uint64
				want := false
				for k := range 8 {
					b := fill
					if k == pos {
						b = byte(c)
					}
					w |= uint64(b) << (8 * k)
					want = want || (b >= 'A' && b <= 'F')
				}
				if hasUpperHex(w) != want {
					t.Fatalf("hasUpperHex(%#x) = %v", w, !want)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(18, 6))
	const alphabet = "0123456789abcdefABCDEFgGxX \xff"
	for range 100_000 {
		b := []byte("0x" + strings.Repeat("0", 40))
		for i := 2; i < 42; i++ {
			if r.IntN(3) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = "0123456789abcdef"[r.IntN(16)]
			}
		}
		switch r.IntN(6) {
		case 0:
			b = b[:r.IntN(42)]
		case 1:
			b[r.IntN(2)] = 'X'
		}
		id := string(b)
		want := IsAddress(id) && id != strings.ToLower(id)
		if needsCanon(id) != want {
			t.Fatalf("needsCanon(%q) = %v", id, !want)
		}
	}
}
