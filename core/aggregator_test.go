package core

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func newAgg(t *testing.T, opts Options) *Aggregator {
	t.Helper()
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func TestOpenHoldGrowsUntilClosed(t *testing.T) {
	a := newAgg(t, Options{})
	if err := recordNow(a, ev("T", "a", 100, 0, false, 2)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now  int64
		want float64
	}{{50, 0}, {100, 0}, {150, 100}, {200, 200}} {
		rows, _ := snapshot(a, tc.now)
		if len(rows) != 1 || rows[0].Score != tc.want || rows[0].OpenHolds != 1 {
			t.Fatalf("now=%d: %+v, want score %v", tc.now, rows, tc.want)
		}
	}
	if _, err := a.CloseHold(a.Now(), "T", "a", 99); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("close before start: %v", err)
	}
	if n, err := a.CloseHold(a.Now(), "T", "a", 130); err != nil || n != 1 {
		t.Fatalf("close: %d %v", n, err)
	}
	rows, _ := snapshot(a, 1000)
	if rows[0].Score != 60 || rows[0].OpenHolds != 0 || rows[0].TotalSeconds != 30 {
		t.Fatalf("after close: %+v", rows[0])
	}
	if _, err := a.CloseHold(a.Now(), "T", "a", 200); !errors.Is(err, ErrNoOpenHold) {
		t.Fatalf("second close: %v", err)
	}
	if _, err := a.CloseHold(a.Now(), "T", "nobody", 200); !errors.Is(err, ErrNoOpenHold) {
		t.Fatalf("unknown holder: %v", err)
	}
}

func TestRecordAllOrNothingAndPartial(t *testing.T) {
	a := newAgg(t, Options{})
	batch := []HoldEvent{ev("T", "a", 0, 10, true, 1), ev("T", "b", 0, 10, true, -1), ev("T", "c", 5, 1, true, 1)}
	_, err := a.Record(100, batch, RecordOptions{})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Index != 1 || ve.Field != "weight" {
		t.Fatalf("strict: %v", err)
	}
	if a.Len() != 0 {
		t.Fatal("a rejected batch changed the state")
	}
	n, err := a.Record(100, batch, RecordOptions{Partial: true})
	var be *BatchError
	if n != 1 || !errors.As(err, &be) || len(be.Errors) != 2 || be.Errors[0].Index != 1 || be.Errors[1].Index != 2 {
		t.Fatalf("partial: %d %v", n, err)
	}
	if a.Len() != 1 {
		t.Fatalf("partial recorded %d holders", a.Len())
	}
	txt, _ := a.MetricsText()
	// The strict batch: b and c failed validation (rejected), a was valid
	// but went with its batch (dropped); the partial one rejected b and c.
	for _, want := range []string{`poh_hold_events_total{result="accepted"} 1`, `poh_hold_events_total{result="rejected"} 4`,
		`poh_hold_events_total{result="dropped"} 1`} {
		if !strings.Contains(txt, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// The aggregator must copy the ids it keeps: the C API passes strings that
// alias buffers the caller reuses.
func TestRecordDoesNotRetainIDs(t *testing.T) {
	a := newAgg(t, Options{})
	buf := []byte("holder-1token-1")
	c := &Columns{Start: []int64{0}, End: []int64{10}, Holder: IDColumn{buf, []int64{0, 8}}, Token: IDColumn{buf[8:], []int64{0, 7}}}
	events, err := c.Events(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := recordNow(a, events...); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXXXXXXXXX")
	rows, _ := snapshot(a, 100)
	if rows[0].HolderID != "holder-1" {
		t.Fatalf("holder id changed with the caller's buffer: %q", rows[0].HolderID)
	}
	top, _ := topN(a, 1, 100, "token-1")
	if len(top) != 1 {
		t.Fatal("token id changed with the caller's buffer")
	}
}

func TestTopNToken(t *testing.T) {
	a := newAgg(t, Options{})
	_ = recordNow(a, ev("A", "x", 0, 10, true, 1), ev("B", "x", 0, 100, true, 1), ev("A", "y", 0, 20, true, 1), ev("B", "z", 0, 5, true, 1))
	rows, _ := topN(a, 10, 100, "A")
	if len(rows) != 2 || rows[0].HolderID != "y" || rows[0].Score != 20 || rows[1].Score != 10 || rows[1].Tokens != 1 {
		t.Fatalf("token A: %+v", rows)
	}
	rows, _ = topN(a, 2, 100, "")
	if len(rows) != 2 || rows[0].HolderID != "x" || rows[0].Score != 110 || rows[0].Tokens != 2 {
		t.Fatalf("all: %+v", rows)
	}
	if rows, _ := topN(a, 5, 100, "nope"); len(rows) != 0 {
		t.Fatalf("unknown token: %+v", rows)
	}
	if _, err := topN(a, -1, 100, ""); err == nil {
		t.Fatal("negative n accepted")
	}
	if _, err := topN(a, 1, 100, "\xff"); err == nil {
		t.Fatal("invalid token accepted")
	}
}

func TestGCKeepsOpenHolds(t *testing.T) {
	clock := int64(1000)
	a := newAgg(t, Options{TTL: 60 * time.Second, Clock: func() int64 { return clock }})
	_ = recordNow(a, ev("T", "closed", 0, 10, true, 1), ev("T", "open", 0, 0, false, 1))
	if n, _ := a.GC(1060); n != 0 {
		t.Fatalf("dropped %d at exactly ttl", n)
	}
	if n, _ := a.GC(1061); n != 1 || a.Len() != 1 {
		t.Fatalf("dropped %d, %d left", n, a.Len())
	}
	rows, _ := snapshot(a, 2000)
	if rows[0].HolderID != "open" {
		t.Fatalf("kept %+v", rows)
	}
	txt, _ := a.MetricsText()
	if !strings.Contains(txt, "poh_gc_evictions_total 1") || !strings.Contains(txt, "poh_holders 1") || !strings.Contains(txt, "poh_open_holds 1") {
		t.Fatalf("metrics:\n%s", txt)
	}
}

func TestNoTTLNeverDrops(t *testing.T) {
	a := newAgg(t, Options{})
	_, _ = a.Record(0, []HoldEvent{ev("T", "a", 0, 1, true, 1)}, RecordOptions{})
	if n, _ := a.GC(MaxTime); n != 0 {
		t.Fatal("dropped without a TTL")
	}
	if err := a.StartGC(time.Second, gcStep(a)); err == nil {
		t.Fatal("background GC started without a TTL")
	}
}

func TestBackgroundGCStopsWithAggregator(t *testing.T) {
	defer goleak.VerifyNone(t)
	var clock atomic.Int64
	clock.Store(1000)
	a, err := New(Options{TTL: time.Second, Clock: clock.Load})
	if err != nil {
		t.Fatal(err)
	}
	_ = recordNow(a, ev("T", "a", 0, 1, true, 1))
	if err := a.StartGC(time.Millisecond, gcStep(a)); err != nil {
		t.Fatal(err)
	}
	if err := a.StartGC(time.Millisecond, gcStep(a)); err == nil {
		t.Fatal("started twice")
	}
	clock.Store(5000)
	deadline := time.Now().Add(5 * time.Second)
	for a.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling a condition, bounded
	}
	if a.Len() != 0 {
		t.Fatal("background GC never ran")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	// goleak.VerifyNone (deferred) fails the test if the GC goroutine survived.
}

func TestClosedAggregator(t *testing.T) {
	a := newAgg(t, Options{TTL: time.Second})
	_ = a.Close()
	checks := map[string]error{}
	checks["record"] = recordNow(a, ev("T", "a", 0, 1, true, 1))
	_, checks["close"] = a.CloseHold(a.Now(), "T", "a", 1)
	_, checks["snapshot"] = snapshot(a, 1)
	_, checks["top"] = topN(a, 1, 1, "")
	_, checks["gc"] = a.GC(1)
	checks["startgc"] = a.StartGC(time.Second, gcStep(a))
	for op, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", op, err)
		}
	}
}

func TestMetricsRegistries(t *testing.T) {
	// Two aggregators with their own registries never clash.
	a, b := newAgg(t, Options{}), newAgg(t, Options{})
	_ = recordNow(a, ev("T", "a", 0, 10, true, 1))
	if got := testutil.ToFloat64(gaugeOf(t, a, "poh_holders")); got != 1 {
		t.Fatalf("a holders %v", got)
	}
	if got := testutil.ToFloat64(gaugeOf(t, b, "poh_holders")); got != 0 {
		t.Fatalf("b holders %v", got)
	}
	// On one shared registry, aggregators are told apart by a const label
	// (same label names, different values); a duplicate is an error.
	reg := prometheus.NewRegistry()
	newAgg(t, Options{Registerer: reg, ConstLabels: prometheus.Labels{"aggregator": "first"}})
	if _, err := New(Options{Registerer: reg, ConstLabels: prometheus.Labels{"aggregator": "first"}}); err == nil {
		t.Fatal("duplicate registration not reported")
	}
	c := newAgg(t, Options{Registerer: reg, ConstLabels: prometheus.Labels{"aggregator": "second"}})
	_ = recordNow(c, ev("T", "a", 0, 10, true, 1))
	txt, err := GatherText(reg)
	if err != nil || !strings.Contains(txt, `poh_holders{aggregator="second"} 1`) {
		t.Fatalf("shared registry: %v\n%s", err, txt)
	}
	// Exposition passes client_golang's linter.
	problems, err := testutil.GatherAndLint(a.Gatherer())
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	// A Registerer that is not a Gatherer: MetricsText explains.
	d := newAgg(t, Options{Registerer: registererOnly{prometheus.NewRegistry()}})
	if _, err := d.MetricsText(); err == nil {
		t.Fatal("MetricsText without a Gatherer")
	}
}

type registererOnly struct{ r *prometheus.Registry }

func (r registererOnly) Register(c prometheus.Collector) error  { return r.r.Register(c) }
func (r registererOnly) MustRegister(c ...prometheus.Collector) { r.r.MustRegister(c...) }
func (r registererOnly) Unregister(c prometheus.Collector) bool { return r.r.Unregister(c) }

// gaugeOf wraps the aggregator's collector, filtered to one metric name.
func gaugeOf(t *testing.T, a *Aggregator, name string) prometheus.Collector {
	t.Helper()
	return filtered{a.metrics, name}
}

type filtered struct {
	c    prometheus.Collector
	name string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { f.c.Describe(ch) }
func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric, 64)
	f.c.Collect(all)
	close(all)
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+f.name+`"`) {
			ch <- m
		}
	}
}

func TestHistogramsObserveClosedHolds(t *testing.T) {
	a := newAgg(t, Options{})
	_ = recordNow(a, ev("T", "a", 0, 30, true, 2), ev("T", "b", 0, 0, false, 1))
	_, _ = a.CloseHold(1, "T", "b", 7200)
	txt, _ := a.MetricsText()
	for _, want := range []string{
		"poh_hold_event_duration_seconds_count 2", "poh_hold_event_duration_seconds_sum 7230",
		`poh_hold_event_duration_seconds_bucket{le="60"} 1`, `poh_hold_event_duration_seconds_bucket{le="21600"} 2`,
		"poh_hold_event_score_sum 7260", `poh_hold_event_score_bucket{le="100"} 1`,
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestParallelRecordLosesNothing(t *testing.T) {
	a := newAgg(t, Options{})
	const goroutines, batches, per = 8, 50, 100
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			b := make([]HoldEvent, per)
			for i := 0; i < batches; i++ {
				for j := range b {
					b[j] = ev("T", string(rune('a'+j%26)), 0, 1, true, 1)
				}
				if err := recordNow(a, b...); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	wg.Wait()
	rows, _ := snapshot(a, 10)
	var events int64
	var score float64
	for _, r := range rows {
		events += r.Events
		score += r.Score
	}
	if events != goroutines*batches*per || score != goroutines*batches*per {
		t.Fatalf("events %d score %v, want %d", events, score, goroutines*batches*per)
	}
}

func TestQueryOneHolder(t *testing.T) {
	a := newAgg(t, Options{})
	_ = recordNow(a, ev("A", "x", 0, 10, true, 1), ev("A", "x", 5, 0, false, 2), ev("B", "x", 0, 3, true, 1))
	rows, err := a.Query(Query{Now: 20, Token: "A", Holder: "x"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("pair A/x: %+v %v", rows, err)
	}
	st := rows[0]
	if st.OpenHolds != 1 || st.Score != 10+30 || st.Events != 2 || st.Tokens != 1 {
		t.Fatalf("pair A/x: %+v", st)
	}
	top, _ := topN(a, 1, 20, "A")
	if top[0] != st {
		t.Fatalf("the pair's row %+v differs from the top-n row %+v", st, top[0])
	}
	all, _ := a.Query(Query{Now: 20, Holder: "x"})
	snap, _ := snapshot(a, 20)
	if len(all) != 1 || all[0] != snap[0] {
		t.Fatalf("holder row %+v, snapshot %+v", all, snap)
	}
	for _, q := range []Query{{Now: 20, Token: "C", Holder: "x"}, {Now: 20, Token: "A", Holder: "nobody"}, {Now: 20, Holder: "nobody"}} {
		if rows, err := a.Query(q); len(rows) != 0 || err != nil {
			t.Fatalf("%+v: %v %v", q, rows, err)
		}
	}
	if _, err := a.Query(Query{Now: 20, Token: "A", Holder: "\xff"}); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("bad holder: %v", err)
	}
}

func TestBucketMatchesLinearScan(t *testing.T) {
	for _, bounds := range [][]float64{durationBuckets, scoreBuckets, {1}, {}} {
		for _, v := range []float64{-1, 0, 0.5, 1, 1.5, 59, 60, 61, 86400, 1e14, 1e15, 1e16, math.Inf(1)} {
			want := len(bounds)
			for i, b := range bounds {
				if v <= b {
					want = i
					break
				}
			}
			if got := bucket(bounds, v); got != want {
				t.Errorf("bucket(%v, %v) = %d, want %d", bounds, v, got, want)
			}
		}
	}
}

// Two ids with one 64-bit hash cannot be found by search, so collisions are
// driven with made-up hashes.
func TestShardHashCollisions(t *testing.T) {
	sh := &shard{}
	a, b, c := &holder{id: "a"}, &holder{id: "b"}, &holder{id: "c"}
	sh.put(7, a)
	if sh.get(7, "b") != nil {
		t.Fatal("b found before it was added")
	}
	sh.put(7, b) // same hash, other id: same probe sequence
	sh.put(7, c)
	if sh.get(7, "a") != a || sh.get(7, "b") != b || sh.get(7, "c") != c || sh.holders.n != 3 {
		t.Fatalf("lookups after collisions: %v %v %v, count %d", sh.get(7, "a"), sh.get(7, "b"), sh.get(7, "c"), sh.holders.n)
	}
	seen := map[string]bool{}
	sh.all(func(h *holder) { seen[h.id] = true })
	if len(seen) != 3 {
		t.Fatalf("all visited %v", seen)
	}
	sh.holders.del(7, a) // the first of the cluster: b and c must still be found
	if sh.get(7, "a") != nil || sh.get(7, "b") != b || sh.get(7, "c") != c || sh.holders.n != 2 {
		t.Fatalf("after del: count %d", sh.holders.n)
	}
}

// TestHolderTableModel checks the table against a map through random puts,
// dels (including deletes during all, as GC does) and growth, with hashes
// drawn from a small range so that clusters, collisions and wrap-around are
// common.
func TestHolderTableModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for trial := range 200 {
		var tab holderTable
		model := map[string]uint64{}
		byID := map[string]*holder{}
		hashOf := func(id string) uint64 {
			if trial%2 == 0 {
				return uint64(len(id)%3) << 62 // few homes, many equal hashes
			}
			return xxhash.Sum64String(id)
		}
		for op := range 400 {
			id := fmt.Sprintf("h%d", r.IntN(60))
			hash := hashOf(id)
			switch r.IntN(4) {
			case 0, 1:
				if _, ok := model[id]; !ok {
					h := &holder{id: id}
					tab.put(hash, h)
					model[id], byID[id] = hash, h
				}
			case 2:
				if h := byID[id]; h != nil {
					tab.del(hash, h)
					delete(model, id)
					delete(byID, id)
				}
			default: // delete about half while walking, as GC does
				visits := map[string]int{}
				tab.all(func(h *holder) {
					visits[h.id]++
					if r.IntN(2) == 0 {
						tab.del(model[h.id], h)
						delete(model, h.id)
						delete(byID, h.id)
					}
				})
				for id, n := range visits {
					if n != 1 {
						t.Fatalf("trial %d op %d: all visited %s %d times", trial, op, id, n)
					}
				}
				for id := range model {
					if _, ok := visits[id]; !ok {
						t.Fatalf("trial %d op %d: all missed %s", trial, op, id)
					}
				}
			}
			if tab.n != len(model) {
				t.Fatalf("trial %d op %d: n %d, model %d", trial, op, tab.n, len(model))
			}
			for id, hash := range model {
				if tab.get(hash, id) != byID[id] {
					t.Fatalf("trial %d op %d: %s not found", trial, op, id)
				}
			}
			if tab.get(hashOf("absent"), "absent") != nil {
				t.Fatal("found an absent id")
			}
		}
	}
}

// TestHolderLayout pins what the record path's cache behaviour relies on: a
// holder fits a 128-byte size class (so it is line-aligned) and the fields
// a closed hold writes for the first token share its first 64 bytes.
func TestHolderLayout(t *testing.T) {
	var h holder
	if size := unsafe.Sizeof(h); size > 128 {
		t.Errorf("holder is %d bytes; more than 128 moves it to a size class that is not line-aligned", size)
	}
	hot := []uintptr{unsafe.Offsetof(h.updated),
		unsafe.Offsetof(h.first) + unsafe.Offsetof(h.first.closed) + unsafe.Sizeof(h.first.closed) - 1,
		unsafe.Offsetof(h.first) + unsafe.Offsetof(h.first.seconds) + 7,
		unsafe.Offsetof(h.first) + unsafe.Offsetof(h.first.events) + 7,
		unsafe.Offsetof(h.first) + unsafe.Offsetof(h.first.updated) + 7}
	for _, off := range hot {
		if off >= 64 {
			t.Errorf("a field written per event ends at byte %d, past the first cache line", off)
		}
	}
}

// A closed hold whose end is after the time it is recorded grows like an open
// hold until its end (rows agree with Score at every now from the record
// time on), and the first write at or after its end credits it.
func TestFutureEndGrowsUntilItsEnd(t *testing.T) {
	a := newAgg(t, Options{})
	events := []HoldEvent{ev("T", "a", 0, 100, true, 2), ev("T", "a", 20, 0, false, 1)}
	if _, err := a.Record(10, events, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, now := range []int64{10, 50, 99, 100, 150} {
		rows, _ := snapshot(a, now)
		want, _ := scoreAt(events, now)
		if rows[0].Score != want || rows[0].OpenHolds != 1 {
			t.Fatalf("now %d: row %+v, batch score %v", now, rows[0], want)
		}
	}
	// A write at 120 (another token, same holder) does not touch pair T.
	if _, err := a.Record(120, []HoldEvent{ev("U", "a", 0, 1, true, 1)}, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	// A write to pair T at 120 credits the hold: 200 in the closed sum.
	if _, err := a.CloseHold(120, "T", "a", 130); err != nil {
		t.Fatal(err)
	}
	st, _, _ := a.Export()
	if got := st[0].Tokens[0]; got.ClosedSum != 200 || len(got.Live) != 1 || !got.Live[0].HasEnd || got.Live[0].End != 130 {
		t.Fatalf("pair T after the write at 120: %+v", got)
	}
	rows, _ := snapshot(a, 125)
	if want := 200.0 + 105 + 1; rows[0].Score != want || rows[0].OpenHolds != 0 {
		t.Fatalf("at 125: %+v, want score %v", rows[0], want)
	}
}

// An EVM address is one holder whatever its letter case; other ids are
// compared byte for byte.
func TestAddressIdentity(t *testing.T) {
	a := newAgg(t, Options{})
	mixed := "0xAbCdEf0123456789aBcDeF0123456789ABCDEF01"
	lower := "0xabcdef0123456789abcdef0123456789abcdef01"
	events := []HoldEvent{ev("T", mixed, 0, 10, true, 1), ev("T", lower, 0, 5, true, 1),
		ev("0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "SoLaNa", 0, 1, true, 1), ev("T", "solana", 0, 1, true, 1),
		ev("T", "0xABC", 0, 1, true, 1), ev("T", "0xabc", 0, 1, true, 1)}
	orig := slices.Clone(events)
	if _, err := a.Record(10, events, RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(events, orig) {
		t.Fatal("Record rewrote the caller's events")
	}
	rows, _ := snapshot(a, 10)
	ids := map[string]HolderStat{}
	for _, r := range rows {
		ids[r.HolderID] = r
	}
	if len(rows) != 5 || ids[lower].Score != 15 || ids[lower].Events != 2 {
		t.Fatalf("rows %+v", rows)
	}
	for _, id := range []string{"SoLaNa", "solana", "0xABC", "0xabc"} {
		if _, ok := ids[id]; !ok {
			t.Fatalf("%s is not its own holder: %+v", id, rows)
		}
	}
	if got, _ := a.Query(Query{Now: 10, Holder: strings.ToUpper(lower[:2]) + strings.ToUpper(lower[2:])}); len(got) != 0 {
		t.Fatal("0X (upper-case x) is not an address: it must not match")
	}
	got, _ := a.Query(Query{Now: 10, Holder: mixed, Token: "T"})
	if len(got) != 1 || got[0].HolderID != lower {
		t.Fatalf("query by a mixed-case spelling: %+v", got)
	}
	if top, _ := a.Query(Query{Now: 10, Token: "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", N: 5}); len(top) != 1 || top[0].HolderID != "SoLaNa" {
		t.Fatalf("token address in canonical form: %+v", top)
	}
	if cs, ok := ChecksumAddress("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"); !ok || cs != "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed" {
		t.Fatalf("EIP-55 of the spec's example: %s", cs)
	}
}
