package storebench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/audit"
	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/internal/dbtest"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
	"github.com/poh-holdmetrics/poh-holdmetrics/store/mongostore"
)

// batch is the events of one write (one Record call, acknowledged as one).
const batch = 100

// BenchmarkIngest: b.N acknowledged writes of `batch` events each, from
// 16 concurrent writers (RecordAndWait), per store. Every server runs on
// this machine, started by the benchmark: FerretDB (SQLite) inside the
// test binary, immudb as a process (built by scripts/build-dbserver.sh;
// the audit sub-benchmarks are skipped, saying why, when it cannot be
// built). Reported: events/s and acknowledged writes/s.
func BenchmarkIngest(b *testing.B) {
	for _, tc := range []struct {
		name  string
		mongo bool
		audit bool
	}{
		{"store=log", false, false},
		{"store=mongodb", true, false},
		{"store=log+audit", false, true},
		{"store=mongodb+audit", true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w := open(b, tc.mongo, tc.audit)
			events := func(seq int64) []core.HoldEvent {
				evs := make([]core.HoldEvent, batch)
				for i := range evs {
					evs[i] = core.HoldEvent{TokenID: "T", HolderID: fmt.Sprintf("h%d", (seq*batch+int64(i))%50000),
						Start: seq, End: seq + 100, HasEnd: true, Weight: 1.5}
				}
				return evs
			}
			var seq atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			t0 := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s := seq.Add(1)
					if _, err := core.RecordAndWait(w, 1_700_000_000+s, events(s), core.RecordOptions{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			el := time.Since(t0).Seconds()
			b.StopTimer()
			b.ReportMetric(float64(b.N*batch)/el, "events/s")
			b.ReportMetric(float64(b.N)/el, "writes/s")
		})
	}
}

func open(b *testing.B, mongo, withAudit bool) core.Writer {
	b.Helper()
	var im *dbtest.Immudb
	if withAudit {
		im = dbtest.StartImmudb(b) // skips, with the reason, when immudb cannot be built
	}
	agg, err := core.New(core.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { agg.Close() })
	snap := int64(0) // the default
	if withAudit {
		snap = -1 // the audit takes the snapshots
	}
	var st audit.Store
	if mongo {
		s, _, err := mongostore.Open(context.Background(), dbtest.FerretDB(b, "bench"), agg, mongostore.Options{SnapshotBytes: snap})
		if err != nil {
			b.Fatal(err)
		}
		st = audit.Mongo(s)
	} else {
		s, _, err := store.Open(filepath.Join(b.TempDir(), "data"), agg, store.Options{SnapshotBytes: snap})
		if err != nil {
			b.Fatal(err)
		}
		st = audit.Embedded(s)
	}
	var w core.Writer = st
	if withAudit {
		l, err := audit.Dial(context.Background(), audit.Config{URL: im.URL()})
		if err != nil {
			b.Fatal(err)
		}
		if w, err = audit.NewWriter(context.Background(), st, l, audit.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		if err := w.Close(); err != nil {
			b.Error(err)
		}
	})
	return w
}
