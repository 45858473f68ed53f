package mongostore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/internal/dbtest"
	"github.com/poh-holdmetrics/poh-holdmetrics/internal/storetest"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// Every test runs against a real MongoDB wire protocol server: FerretDB
// v1.24.2 with its SQLite backend, embedded in the test binary.

func aggOpts() core.Options { return core.Options{TTL: 1000 * 1e9} }

func open(t *testing.T, uri string, opts Options) (*Store, *core.Aggregator, *Recovery) {
	t.Helper()
	a := storetest.NewAgg(t, aggOpts())
	s, rec, err := Open(context.Background(), uri, a, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, a, rec
}

// crash is kill -9 as the database sees it: queued records are lost,
// nothing is flushed, snapshotted or released (the lease stays until it
// expires).
func crash(s *Store) {
	s.mu.Lock()
	for s.flushing {
		s.cond.Wait()
	}
	s.closed = true
	s.queue = nil
	s.opts.SnapshotBytes = -1
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	ctx, cancel := s.opCtx()
	defer cancel()
	_ = s.client.Disconnect(ctx)
}

func TestReopenRebuildsExactly(t *testing.T) {
	uri := dbtest.FerretDB(t, "hm")
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"records only", Options{SnapshotBytes: -1}},
		{"tiny snapshots", Options{SnapshotBytes: 1500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := strings.Replace(uri, "/hm", "/"+strings.ReplaceAll(tc.name, " ", "_"), 1)
			twin := storetest.NewAgg(t, aggOpts())
			s, _, _ := open(t, db, tc.opts)
			storetest.Workload(t, s, twin, 1, 300, 1000)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, a2, rec := open(t, db, tc.opts)
			storetest.SameState(t, a2, twin)
			storetest.Workload(t, s2, twin, 2, 150, 2000)
			if err := s2.Close(); err != nil {
				t.Fatal(err)
			}
			_, a3, rec3 := open(t, db, tc.opts)
			storetest.SameState(t, a3, twin)
			if tc.opts.SnapshotBytes > 0 && (rec.Snapshot == 0 || rec3.Snapshot == 0) {
				t.Fatalf("no snapshot was loaded: %+v / %+v", rec, rec3)
			}
			t.Logf("recoveries: %+v / %+v", rec, rec3)
		})
	}
}

// The same writes through the embedded log and through MongoDB rebuild the
// same state: both replay the same records the same way.
func TestSameStateAsTheEmbeddedLog(t *testing.T) {
	uri := dbtest.FerretDB(t, "hm")
	dir := t.TempDir()
	la := storetest.NewAgg(t, aggOpts())
	ls, _, err := store.Open(dir, la, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms, _, _ := open(t, uri, Options{SnapshotBytes: 4000})
	twin := storetest.NewAgg(t, aggOpts())
	storetest.Workload(t, ls, twin, 7, 200, 1000)
	twin2 := storetest.NewAgg(t, aggOpts())
	storetest.Workload(t, ms, twin2, 7, 200, 1000)
	ls.Close()
	ms.Close()
	_, ma, _ := open(t, uri, Options{})
	la2 := storetest.NewAgg(t, aggOpts())
	ls2, _, err := store.Open(dir, la2, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ls2.Close()
	storetest.SameState(t, ma, la2)
}

func TestCrashKeepsAcknowledgedAndTheLeaseExpires(t *testing.T) {
	uri := dbtest.FerretDB(t, "hm")
	ttl := 3 * time.Second // short, and still long enough for renewals under -race on a busy machine
	twin := storetest.NewAgg(t, aggOpts())
	s, _, _ := open(t, uri, Options{LeaseTTL: ttl, SnapshotBytes: 3000})
	storetest.Workload(t, s, twin, 3, 200, 1000)
	// Applied and queued, not waited for: the crash may lose it, or it may
	// have been inserted already (then it is back after the restart).
	lost := []core.HoldEvent{{TokenID: "T9", HolderID: "maybe", Start: 1, Weight: 1}}
	if _, _, err := s.Record(5000, lost, core.RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	crash(s)

	a := storetest.NewAgg(t, aggOpts())
	_, _, err := Open(context.Background(), uri, a, Options{LeaseTTL: ttl})
	if !errors.Is(err, ErrLeased) {
		t.Fatalf("a second opener while the dead owner's lease runs: got %v, want ErrLeased", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("the error does not name the owner: %v", err)
	}
	var s2 *Store
	for s2 == nil {
		s2, _, err = Open(context.Background(), uri, a, Options{LeaseTTL: ttl})
		switch {
		case err == nil:
		case errors.Is(err, ErrLeased) && time.Since(crashed) < 10*ttl:
			time.Sleep(ttl / 10)
		default:
			t.Fatalf("the dead owner's lease did not expire: %v", err)
		}
	}
	defer s2.Close()
	if waited := time.Since(crashed); waited < ttl/2 {
		t.Errorf("opened %v after the crash, before the lease (%v) could expire", waited, ttl)
	}
	if rows, _ := a.Query(core.Query{Now: 6000, Token: "T9"}); len(rows) > 0 {
		twin.Record(5000, lost, core.RecordOptions{})
	}
	storetest.SameState(t, a, twin)
}

func TestSecondOpenerGetsAClearError(t *testing.T) {
	uri := dbtest.FerretDB(t, "hm")
	s, _, _ := open(t, uri, Options{})
	a := storetest.NewAgg(t, aggOpts())
	_, _, err := Open(context.Background(), uri, a, Options{})
	if !errors.Is(err, ErrLeased) {
		t.Fatalf("got %v, want ErrLeased", err)
	}
	for _, want := range []string{"in use by another holdmetricsd: pid ", "has written database hm since", "expires 15s after"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Another database of the same server is free.
	other := strings.Replace(uri, "/hm", "/hm2", 1)
	if s3, _, err := Open(context.Background(), other, storetest.NewAgg(t, aggOpts()), Options{}); err != nil {
		t.Fatalf("another database: %v", err)
	} else {
		s3.Close()
	}
	// A clean Close releases the lease at once.
	s.Close()
	s2, _, err := Open(context.Background(), uri, a, Options{})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	s2.Close()
}

func TestSnapshotCompactsAndBoundsRestart(t *testing.T) {
	uri := dbtest.FerretDB(t, "hm")
	twin := storetest.NewAgg(t, aggOpts())
	ttl := 3 * time.Second
	s, _, _ := open(t, uri, Options{SnapshotBytes: -1, LeaseTTL: ttl})
	storetest.Workload(t, s, twin, 5, 300, 1000)
	info, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if info.Seq != s.LastSeq() || info.Seq == 0 {
		t.Fatalf("snapshot at %d, last record %d", info.Seq, s.LastSeq())
	}
	storetest.Workload(t, s, twin, 6, 20, 2000)
	// A waited-for write last: records are inserted in order, so every
	// one before it (a GC is not waited for) is in the database too.
	last := []core.HoldEvent{{TokenID: "T0", HolderID: "last", Start: 10, Weight: 1}}
	if _, err := core.RecordAndWait(s, 3000, last, core.RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := twin.Record(3000, last, core.RecordOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := s.recs.CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if want := s.LastSeq() - info.Seq; n != want {
		t.Fatalf("%d records left after the snapshot, want %d", n, want)
	}
	crash(s)
	a := storetest.NewAgg(t, aggOpts())
	var rec *Recovery
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s2 *Store
		s2, rec, err = Open(ctx, uri, a, Options{LeaseTTL: ttl})
		if err == nil {
			defer s2.Close()
			break
		}
		if !errors.Is(err, ErrLeased) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(ttl / 10) // the crashed owner's lease expires
	}
	if rec.Snapshot != info.Seq || rec.Records != n {
		t.Fatalf("recovery %+v: want snapshot %d and %d records", rec, info.Seq, n)
	}
	storetest.SameState(t, a, twin)
}

func TestWritesAfterCloseFail(t *testing.T) {
	uri := dbtest.FerretDB(t, "hm")
	s, _, _ := open(t, uri, Options{})
	s.Close()
	_, _, err := s.Record(1, []core.HoldEvent{{TokenID: "t", HolderID: "h", Start: 0, Weight: 1}}, core.RecordOptions{})
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("got %v, want store.ErrClosed", err)
	}
}
