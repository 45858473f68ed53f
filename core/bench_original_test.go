package core

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// The shapes the original Rust crate was benchmarked in (issue 18; its
// figures, from an opt-level-3 build on this machine, are quoted in the
// README's comparison: it cannot be rebuilt here). Each is one thread unless
// it says otherwise, and -short shrinks it to a few hundred events.

// cpuClock reports the process CPU time per event of a benchmark loop: the
// figure to compare on a shared, loaded machine (wall time includes waiting
// for a core). Start it right before b.Loop.
type cpuClock struct{ start int64 }

func startCPU() cpuClock { return cpuClock{processCPU()} }

func (c cpuClock) report(b *testing.B, perOp int) {
	if c.start == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N)/float64(perOp), "cpu-ns/event")
}

// coldEvents is n closed holds of n new holders, each on its own token (so
// every event creates a holder, a (holder, token) pair and an interned
// token): the original's criterion shape.
func coldEvents(n int) []HoldEvent {
	r := rand.New(rand.NewPCG(18, 18))
	out := make([]HoldEvent, n)
	for i := range out {
		s := 1_600_000_000 + r.Int64N(100_000_000)
		out[i] = HoldEvent{TokenID: fmt.Sprintf("token-%06d", i), HolderID: fmt.Sprintf("0x%040x", i),
			Start: s, End: s + r.Int64N(10_000_000), HasEnd: true, Weight: r.Float64() * 100}
	}
	return out
}

// BenchmarkColdIngest: a fresh aggregator per iteration (New and Close are
// timed, as the original's constructor and drop were), 20,000 events of
// 20,000 new holders and 20,000 distinct tokens, then (snapshot=...) one row
// per holder. calls=batch records them in one Record; calls=one-event in one
// Record per event (the original's record()). snapshot=ranked is the full
// ranking, snapshot=unordered Query.Unordered (what the original returned).
func BenchmarkColdIngest(b *testing.B) {
	n := 20_000
	if testing.Short() {
		n = 200
	}
	events := coldEvents(n)
	for _, calls := range []string{"batch", "one-event"} {
		for _, snap := range []string{"none", "ranked", "unordered"} {
			b.Run(fmt.Sprintf("calls=%s/snapshot=%s", calls, snap), func(b *testing.B) {
				cpu := startCPU()
				for b.Loop() {
					a, err := New(Options{})
					if err != nil {
						b.Fatal(err)
					}
					if calls == "batch" {
						if _, err := a.Record(2_000_000_000, events, RecordOptions{}); err != nil {
							b.Fatal(err)
						}
					} else {
						for i := range events {
							if _, err := a.Record(2_000_000_000, events[i:i+1], RecordOptions{}); err != nil {
								b.Fatal(err)
							}
						}
					}
					if snap != "none" {
						rows, err := a.Query(Query{Now: 2_000_000_000, Unordered: snap == "unordered"})
						if err != nil || len(rows) != n {
							b.Fatal(err, len(rows))
						}
					}
					_ = a.Close()
				}
				perEvent(b, n)
				cpu.report(b, n)
			})
		}
	}
}

// BenchmarkRecordOneEvent: 20,000 events over 1,000 holders, one Record call
// per event, from GOMAXPROCS goroutines at once (the seed's parallel
// record(): 555 ns/event) and from one goroutine. Closed holds, recorded
// after their end, so that re-recording credits them (no live-hold list
// grows from one iteration to the next).
func BenchmarkRecordOneEvent(b *testing.B) {
	n := 20_000
	if testing.Short() {
		n = 200
	}
	events := benchEvents(n, 1000)
	for i := range events {
		events[i].End, events[i].HasEnd = events[i].Start+100, true
	}
	for _, g := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			a, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			var wg sync.WaitGroup
			cpu := startCPU()
			for b.Loop() {
				for k := range g {
					part := events[k*n/g : (k+1)*n/g]
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range part {
							if _, err := a.Record(2_000_000_000, part[i:i+1], RecordOptions{}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			}
			perEvent(b, n)
			cpu.report(b, n)
		})
	}
}
