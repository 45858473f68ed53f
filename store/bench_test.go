package store

import (
	"fmt"
	"testing"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
)

// BenchmarkRecord compares the durable write path with the bare aggregator
// (the in-memory daemon's path) in one run: ns/event for batches of 1 and
// 10,000 events, under each fsync policy.
func BenchmarkRecord(b *testing.B) {
	events := make([]core.HoldEvent, 10000)
	for i := range events {
		events[i] = core.HoldEvent{TokenID: fmt.Sprintf("TOKEN-%d", i%10), HolderID: fmt.Sprintf("0x%040x", i*7919%100000),
			Start: 1_700_000_000, End: 1_700_003_600, HasEnd: true, Weight: float64(1 + i%7)}
	}
	for _, size := range []int{1, 10000} {
		for _, policy := range []Fsync{"memory", FsyncNone, FsyncInterval, FsyncAlways} {
			if policy == FsyncAlways && size == 1 {
				continue // one fsync per event: measures the disk, not the store
			}
			b.Run(fmt.Sprintf("batch=%d/%s", size, policy), func(b *testing.B) {
				a, _ := core.New(core.Options{})
				defer a.Close()
				record := func(evs []core.HoldEvent) error {
					_, err := a.Record(1_700_010_000, evs, core.RecordOptions{})
					return err
				}
				if policy != "memory" {
					s, _, err := Open(b.TempDir(), a, Options{Fsync: policy, SnapshotBytes: -1})
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					record = func(evs []core.HoldEvent) error {
						_, err := core.RecordAndWait(s, 1_700_010_000, evs, core.RecordOptions{})
						return err
					}
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					off := (i * size) % len(events)
					if err := record(events[off : off+size]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/event")
			})
		}
	}
}
