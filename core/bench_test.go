package core

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// Seed figures these are compared with (README "Benchmarks"): calc_score on
// 20,000 events ≈ 1.03 ms (51.5 ns/event); parallel record() of 20,000 events
// ≈ 11.1 ms (555 ns/event).

func benchEvents(n, holders int) []HoldEvent {
	r := rand.New(rand.NewPCG(42, 42))
	ids := make([]string, holders)
	for i := range ids {
		ids[i] = fmt.Sprintf("0x%040x", i) // wallet-address-sized ids
	}
	out := make([]HoldEvent, n)
	for i := range out {
		s := 1_600_000_000 + r.Int64N(100_000_000)
		out[i] = HoldEvent{TokenID: "TOKEN", HolderID: ids[r.IntN(holders)], Start: s, Weight: r.Float64() * 100}
		if r.IntN(10) > 0 {
			out[i].End, out[i].HasEnd = s+r.Int64N(10_000_000), true
		}
	}
	return out
}

var sink float64

// benchNow is after every end of benchEvents (starts below 1.7e9, holds
// shorter than 1e7 s): the recorded holds are closed, as a replayed history
// is. (With a now before the ends they would be holds that grow until their
// end, kept apart per pair, and re-recording a batch would grow that state.)
const benchNow = 1_800_000_000

func perEvent(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
}

// BenchmarkScore: 20,000 events; Columns is the packed layout the C API and
// numpy pass (the bar is ≤ 3 ns/event), Events is []HoldEvent with full id
// validation.
func BenchmarkScore(b *testing.B) {
	for _, n := range []int{20_000, 1_000_000} {
		events := benchEvents(n, 1000)
		cols := toColumns(events)
		cols.Token, cols.Holder = IDColumn{}, IDColumn{}
		b.Run(fmt.Sprintf("layout=columns/events=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := scoreColumnsAt(cols, 1_700_000_000); err != nil {
					b.Fatal(err)
				}
			}
			perEvent(b, n)
		})
		// A reference point measured in the same run: the formula with plain
		// (uncompensated) summation and no validation, in Go. It is a
		// separate function: a loop written inside the b.Loop body would be
		// compiled with its accumulator kept in memory.
		b.Run(fmt.Sprintf("layout=baseline-naive/events=%d", n), func(b *testing.B) {
			for b.Loop() {
				sink = naiveScore(cols.Start, cols.End, cols.HasEnd, cols.Weight, 1_700_000_000)
			}
			perEvent(b, n)
		})
		if n > 20_000 {
			continue
		}
		b.Run(fmt.Sprintf("layout=events/events=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := scoreAt(events, 1_700_000_000); err != nil {
					b.Fatal(err)
				}
			}
			perEvent(b, n)
		})
	}
}

//go:noinline
func naiveScore(start, end []int64, hasEnd []uint8, weight []float64, now int64) float64 {
	sum := 0.0
	for i, s := range start {
		stop := now
		if hasEnd[i] != 0 {
			stop = min(end[i], stop)
		}
		sum += float64(max(stop-s, 0)) * weight[i]
	}
	return sum
}

// BenchmarkRecord: 20,000 events over 1,000 holders as one batch. goroutines=2
// records two such batches at once; compare its events/s with goroutines=1.
func BenchmarkRecord(b *testing.B) {
	const n, holders = 20_000, 1000
	for _, g := range []int{1, 2} {
		batches := make([][]HoldEvent, g)
		for i := range batches {
			batches[i] = benchEvents(n, holders)
			for j := range batches[i] { // closed only: re-recording must not grow open-hold lists
				batches[i][j].End, batches[i][j].HasEnd = batches[i][j].Start+100, true
			}
		}
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			a, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			// The benchmark's own goroutine records the first batch (so
			// goroutines=1 measures RecordAt alone, not a goroutine start and
			// wake-up per batch); each other batch gets a goroutine.
			var wg sync.WaitGroup
			for b.Loop() {
				for _, batch := range batches[1:] {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := a.Record(benchNow, batch, RecordOptions{}); err != nil {
							b.Error(err)
						}
					}()
				}
				if _, err := a.Record(benchNow, batches[0], RecordOptions{}); err != nil {
					b.Error(err)
				}
				wg.Wait()
			}
			perEvent(b, n*g)
			b.ReportMetric(float64(n*g)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		// What two cores give this machine, measured in the same run: the
		// per-event work that shares nothing (validity check and xxhash of
		// the holder id), on g goroutines. Its 2-vs-1 ratio is the ceiling
		// for Record's.
		b.Run(fmt.Sprintf("ceiling-validate-hash/goroutines=%d", g), func(b *testing.B) {
			work := func(batch []HoldEvent) {
				var acc uint64
				for i := range batch {
					if batch[i].valid() {
						acc ^= xxhash.Sum64String(batch[i].HolderID)
					}
				}
				if acc == 0 {
					b.Error("no hash")
				}
			}
			var wg sync.WaitGroup
			for b.Loop() { // as above: the first batch on this goroutine
				for _, batch := range batches[1:] {
					wg.Add(1)
					go func() {
						defer wg.Done()
						work(batch)
					}()
				}
				work(batches[0])
				wg.Wait()
			}
			perEvent(b, n*g)
			b.ReportMetric(float64(n*g)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
	// Many holders in random order: the working set outgrows the caches.
	b.Run("holders=100000/batch=16384", func(b *testing.B) {
		batch := benchEvents(16384, 100_000)
		for i := range batch { // closed only: re-recording must not grow open-hold lists
			batch[i].End, batch[i].HasEnd = batch[i].Start+100, true
		}
		a, _ := New(Options{})
		defer a.Close()
		// warm: every holder exists, as after the first pass of a big ingest
		warm := benchEvents(1_000_000, 100_000)
		_, _ = a.Record(benchNow, warm, RecordOptions{})
		// as the C API receives it: ids in one contiguous buffer
		cols := toColumns(batch)
		var events []HoldEvent
		for b.Loop() {
			events, _ = cols.Events(events[:0])
			if _, err := a.Record(benchNow, events, RecordOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		perEvent(b, len(batch))
	})
	b.Run("fresh-aggregator", func(b *testing.B) {
		batch := benchEvents(n, holders)
		for b.Loop() {
			b.StopTimer()
			a, _ := New(Options{})
			b.StartTimer()
			if _, err := a.Record(benchNow, batch, RecordOptions{}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			_ = a.Close()
			b.StartTimer()
		}
		perEvent(b, n)
	})
}

// bigAggregator holds `holders` holders with one closed event each, plus one
// open hold per 100 holders, and reports the heap bytes per holder that the
// aggregator itself uses (ids excluded).
func bigAggregator(b *testing.B, holders int) (*Aggregator, float64) {
	b.Helper()
	ids := make([]string, holders)
	idBytes := 0
	for i := range ids {
		ids[i] = fmt.Sprintf("0x%040x", i)
		idBytes += len(ids[i])
	}
	batch := make([]HoldEvent, 0, 10_000)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	a, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i, id := range ids {
		e := HoldEvent{TokenID: "TOKEN", HolderID: id, Start: int64(i), End: int64(i) + int64(i*7919%100_000), HasEnd: true, Weight: 1}
		if i%100 == 0 {
			e.HasEnd = false
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			if _, err := a.Record(benchNow, batch, RecordOptions{}); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	_, _ = a.Record(benchNow, batch, RecordOptions{})
	runtime.GC()
	runtime.ReadMemStats(&after)
	// The aggregator clones each id it keeps: subtract those bytes.
	perHolder := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)-int64(idBytes)) / float64(holders)
	runtime.KeepAlive(ids)
	return a, perHolder
}

// scale is the benchmark size: full for make bench, tiny under -short (make
// test runs every benchmark once that way so none of them rots).
func scale(full int) int {
	if testing.Short() {
		return max(full/100, 1)
	}
	return full
}

// BenchmarkSnapshot: every holder's row at now, as rows (Query) and as
// columns (QueryColumns, what the C API returns), ranked and unranked, over
// two shapes of 1,000,000 holders: bigAggregator's (one closed hold each, an
// open one per 100 holders, many tied scores), and a batch's (10,000,000
// events over four tokens, 10% open: several pairs and live holds per holder,
// as peers.py records).
func BenchmarkSnapshot(b *testing.B) {
	holders := scale(1_000_000)
	one, perHolder := bigAggregator(b, holders)
	defer one.Close()
	many := tokensAggregator(b, 10*holders, holders)
	defer many.Close()
	for _, shape := range []struct {
		name string
		a    *Aggregator
	}{{"one-hold", one}, {"10-holds-4-tokens", many}} {
		for _, unordered := range []bool{false, true} {
			q := Query{Now: 2_000_000, Unordered: unordered}
			b.Run(fmt.Sprintf("%s/rows/unordered=%v", shape.name, unordered), func(b *testing.B) {
				for b.Loop() {
					if rows, err := shape.a.Query(q); err != nil || len(rows) != shape.a.Len() {
						b.Fatal(err, len(rows))
					}
				}
				b.ReportMetric(perHolder, "B/holder")
			})
			b.Run(fmt.Sprintf("%s/columns/unordered=%v", shape.name, unordered), func(b *testing.B) {
				for b.Loop() {
					if g, err := shape.a.QueryColumns(q, nil); err != nil || g.Len() != shape.a.Len() {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// tokensAggregator records n events over `holders` random address ids and
// four tokens, starts before 2,000,000, 10% open, the rest closed by then,
// in 16,384-event writes.
func tokensAggregator(b *testing.B, n, holders int) *Aggregator {
	b.Helper()
	r := rand.New(rand.NewPCG(14, 1))
	ids := make([]string, holders)
	for i := range ids {
		ids[i] = fmt.Sprintf("0x%040x", r.Uint64())
	}
	tokens := []string{"TOKEN0", "TOKEN1", "TOKEN2", "TOKEN3"}
	a, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	const now = 2_000_000
	batch := make([]HoldEvent, 0, 16384)
	for i := range n {
		start := r.Int64N(now - 1000)
		e := HoldEvent{TokenID: tokens[r.IntN(4)], HolderID: ids[r.IntN(holders)], Start: start, Weight: r.Float64() * 100}
		if r.IntN(10) > 0 {
			e.End, e.HasEnd = min(start+r.Int64N(now/5), now), true
		}
		if batch = append(batch, e); len(batch) == cap(batch) || i == n-1 {
			if _, err := a.Record(now, batch, RecordOptions{}); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return a
}

func BenchmarkTopN(b *testing.B) {
	holders := scale(1_000_000)
	a, _ := bigAggregator(b, holders)
	defer a.Close()
	for _, token := range []string{"", "TOKEN"} {
		b.Run(fmt.Sprintf("n=100/token=%q", token), func(b *testing.B) {
			for b.Loop() {
				rows, err := topN(a, 100, 2_000_000, token)
				if err != nil || len(rows) != 100 {
					b.Fatal(err, len(rows))
				}
			}
		})
	}
}

// BenchmarkTopNWindow: an arbitrary-window top-100 over 1,000,000 holders with
// 10,000,000 closed holds in history; reports the history's bytes per event.
func BenchmarkTopNWindow(b *testing.B) {
	holders, perHolder := scale(1_000_000), 10
	ids := make([]string, holders)
	for i := range ids {
		ids[i] = fmt.Sprintf("0x%040x", i)
	}
	build := func(history bool) (*Aggregator, uint64) {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		a, err := New(Options{History: history})
		if err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 1))
		batch := make([]HoldEvent, 0, 10_000)
		for k := 0; k < perHolder; k++ {
			for _, id := range ids {
				s := 1_600_000_000 + r.Int64N(100_000_000)
				batch = append(batch, HoldEvent{TokenID: "TOKEN", HolderID: id, Start: s,
					End: s + r.Int64N(10_000_000), HasEnd: true, Weight: r.Float64() * 100})
				if len(batch) == cap(batch) {
					_, _ = a.Record(benchNow, batch, RecordOptions{})
					batch = batch[:0]
				}
			}
		}
		_, _ = a.Record(benchNow, batch, RecordOptions{})
		runtime.GC()
		runtime.ReadMemStats(&after)
		return a, after.HeapAlloc - before.HeapAlloc
	}
	plain, plainBytes := build(false)
	_ = plain.Close()
	plain = nil
	a, histBytes := build(true)
	defer a.Close()
	w := Window{1_620_000_000, 1_650_000_000}
	for b.Loop() {
		rows, err := a.Query(Query{N: 100, Now: 1_700_000_000, Token: "", Window: &w})
		if err != nil || len(rows) != min(100, holders) {
			b.Fatal(err, len(rows))
		}
	}
	b.ReportMetric(float64(histBytes-plainBytes)/float64(holders*perHolder), "history-B/event")
	b.ReportMetric(float64(histBytes)/float64(holders*perHolder), "total-B/event")
}

// benchTransfers is n ERC-20 transfers among holders addresses in block
// order: mints first, then transfers of part of the sender's balance.
func benchTransfers(n, holders int) *TransferColumns {
	r := rand.New(rand.NewPCG(7, 7))
	ids := make([]string, holders)
	for i := range ids {
		ids[i] = fmt.Sprintf("0x%040x", i+1)
	}
	bal := make([]uint64, holders)
	rows := make([]Transfer, n)
	for i := range rows {
		t := Transfer{Token: "0x" + fmt.Sprintf("%040x", 0xe20), Time: 1_600_000_000 + int64(i)/4, Block: int64(i) / 4, LogIndex: int64(i % 4)}
		from := r.IntN(holders)
		if i < holders || bal[from] == 0 {
			to := i % holders
			t.From, t.To = ZeroAddress, ids[to]
			v := uint64(1+r.IntN(1000)) * 1_000_000_000_000
			t.Value.SetUint64(v)
			bal[to] += v
		} else {
			to := r.IntN(holders)
			v := bal[from]/2 + 1
			t.From, t.To = ids[from], ids[to]
			t.Value.SetUint64(v)
			bal[from] -= v
			bal[to] += v
		}
		rows[i] = t
	}
	return columnsOf(rows)
}

// BenchmarkTransfers: ERC-20 transfers to hold intervals (10M over 1M
// holders at full size), and on to ranked exact scores through an exact
// aggregator.
func BenchmarkTransfers(b *testing.B) {
	n, holders := scale(10_000_000), scale(1_000_000)
	rows := benchTransfers(n, holders)
	b.Run("intervals", func(b *testing.B) {
		for b.Loop() {
			if _, err := Intervals(rows, TransferOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	})
	b.Run("ranked-exact", func(b *testing.B) {
		for b.Loop() {
			holds, err := Intervals(rows, TransferOptions{})
			if err != nil {
				b.Fatal(err)
			}
			a, _ := New(Options{Exact: true})
			if _, err := a.Record(1_700_000_000, holds.Events(), RecordOptions{}); err != nil {
				b.Fatal(err)
			}
			if _, err := a.Query(Query{Now: 1_700_000_000, N: 100}); err != nil {
				b.Fatal(err)
			}
			a.Close()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	})
}

// BenchmarkAllocate: the exact largest-remainder split of a 10^27 pool over
// 1M holders (the Python allocate_rewards took 13 s for it in 0.1).
func BenchmarkAllocate(b *testing.B) {
	holders := scale(1_000_000)
	r := rand.New(rand.NewPCG(3, 3))
	pool, _ := new(big.Int).SetString("1000000000000000000000000000", 10)
	for _, exact := range []bool{false, true} {
		shares := make([]Share, holders)
		for i := range shares {
			shares[i].HolderID = fmt.Sprintf("0x%040x", i)
			if exact {
				var x Int
				x.SetBig(new(big.Int).Lsh(big.NewInt(r.Int64N(1<<50)), 60))
				shares[i].Exact = &x
			} else {
				shares[i].Float = r.Float64() * 1e12
			}
		}
		b.Run(map[bool]string{false: "float", true: "exact"}[exact], func(b *testing.B) {
			for b.Loop() {
				if _, err := Allocate(shares, pool, AllocateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
