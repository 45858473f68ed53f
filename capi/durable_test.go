package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

func openDurable(t *testing.T, dir string, o capitest.Options, so capitest.StoreOptions) uint64 {
	t.Helper()
	h, err := capitest.Open(dir, o, so)
	wantCode(t, "open "+dir, err, capitest.OK)
	if h == 0 {
		t.Fatal("open: zero handle")
	}
	return h
}

func snapshotRows(t *testing.T, h uint64, now int64) []capitest.Stat {
	t.Helper()
	r, err := capitest.Snapshot(h, now)
	wantCode(t, "snapshot", err, capitest.OK)
	defer capitest.Free(r)
	rows, err := capitest.Stats(r, 0, 0)
	wantCode(t, "stats", err, capitest.OK)
	return rows
}

// TestDurableReopenRebuildsExactly: every write path of a durable aggregator
// (record, record_columns, record_partial, close_hold, gc) reaches the log,
// and a reopen rebuilds the same snapshot, updated_at included, under each
// fsync policy; with snapshot_bytes tiny, from a snapshot plus the log.
func TestDurableReopenRebuildsExactly(t *testing.T) {
	for _, c := range []struct {
		name string
		so   capitest.StoreOptions
	}{
		{"always", capitest.StoreOptions{Fsync: capitest.FsyncAlways}},
		{"interval", capitest.StoreOptions{Fsync: capitest.FsyncInterval, FsyncIntervalMS: 1}},
		{"none+snapshots", capitest.StoreOptions{Fsync: capitest.FsyncNone, SnapshotBytes: 64}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			o := capitest.Options{TTLSeconds: 100, History: true}
			h := openDurable(t, dir, o, c.so)
			wantCode(t, "record", capitest.Record(h, "POH", "alice", 10, 0, false, 2, 20), capitest.OK)
			_, err := capitest.RecordColumns(h, capitest.Cols{
				Start: []int64{1, 5, 7}, End: []int64{4, 9, 8}, HasEnd: []uint8{1, 1, 1},
				Weight: []float64{1, 1, 0.5}, Tokens: []string{"POH", "LP", "POH"},
				Holders: []string{"bob", "alice", "idle"},
			}, 30, false)
			wantCode(t, "record_columns", err, capitest.OK)
			acc, rej, _, err := capitest.RecordPartial(h, capitest.Cols{
				Start: []int64{40, 50}, End: []int64{30, 60}, HasEnd: []uint8{1, 1}, Weight: []float64{1, 1},
				Tokens: []string{"POH", "POH"}, Holders: []string{"bad", "carol"},
			}, 60, 2)
			if acc != 1 || rej != 1 || err.Code != capitest.InvalidEvent {
				t.Fatalf("record_partial: accepted %d rejected %d status %d", acc, rej, err.Code)
			}
			if n, err := capitest.CloseHold(h, "POH", "alice", 70, 70); n != 1 || err.Code != capitest.OK {
				t.Fatalf("close_hold: %d, %+v", n, err)
			}
			// TTL 100 at 150: "bob" and "idle" (updated at 30) go; alice (70), carol (60) stay.
			if n, err := capitest.GC(h, 150); n != 2 || err.Code != capitest.OK {
				t.Fatalf("gc: %d, %+v", n, err)
			}
			before := snapshotRows(t, h, 1000)
			if len(before) == 0 {
				t.Fatal("empty snapshot")
			}
			wantCode(t, "free", capitest.Free(h), capitest.OK)

			h = openDurable(t, dir, o, c.so)
			defer capitest.Free(h)
			after := snapshotRows(t, h, 1000)
			if len(after) != len(before) {
				t.Fatalf("reopened: %d rows, want %d", len(after), len(before))
			}
			for i := range before {
				if after[i] != before[i] {
					t.Errorf("row %d: reopened %+v, want %+v", i, after[i], before[i])
				}
			}
			// History came back too: a window query answers.
			r, err := capitest.SnapshotWindow(h, 1000, &capitest.Window{T0: 0, T1: 1000})
			wantCode(t, "window query after reopen", err, capitest.OK)
			capitest.Free(r)
		})
	}
}

// TestDurableLocked: one open store per data dir, in this process as in any
// other; the message names the dir; after poh_free the dir opens again.
func TestDurableLocked(t *testing.T) {
	dir := t.TempDir()
	h := openDurable(t, dir, capitest.Options{}, capitest.StoreOptions{})
	_, err := capitest.Open(dir, capitest.Options{}, capitest.StoreOptions{})
	wantCode(t, "second open", err, capitest.Locked)
	if !strings.Contains(err.Message, dir) || !strings.Contains(err.Message, "locked") {
		t.Errorf("locked message %q does not name %s", err.Message, dir)
	}
	wantCode(t, "free", capitest.Free(h), capitest.OK)
	h = openDurable(t, dir, capitest.Options{}, capitest.StoreOptions{})
	wantCode(t, "free again", capitest.Free(h), capitest.OK)
}

func TestDurableOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := capitest.Open(dir, capitest.Options{}, capitest.StoreOptions{Fsync: 7})
	wantCode(t, "fsync 7", err, capitest.InvalidArgument)
	_, err = capitest.Open(dir, capitest.Options{}, capitest.StoreOptions{FsyncIntervalMS: -1})
	wantCode(t, "interval -1", err, capitest.InvalidArgument)
	_, err = capitest.Open(dir, capitest.Options{TTLSeconds: -1}, capitest.StoreOptions{})
	wantCode(t, "ttl -1", err, capitest.InvalidArgument)
	_, err = capitest.Open(dir, capitest.Options{Window: &capitest.Window{T0: 5, T1: 1}}, capitest.StoreOptions{})
	wantCode(t, "bad window", err, capitest.InvalidEvent)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = capitest.Open(file, capitest.Options{}, capitest.StoreOptions{})
	wantCode(t, "a file as data dir", err, capitest.Store)
	if !strings.Contains(err.Message, file) {
		t.Errorf("message %q does not name %s", err.Message, file)
	}
	// Settings that do not match the stored state are refused, not mixed.
	d2 := filepath.Join(dir, "d2")
	h := openDurable(t, d2, capitest.Options{Window: &capitest.Window{T0: 0, T1: 100}}, capitest.StoreOptions{})
	wantCode(t, "record", capitest.Record(h, "T", "a", 1, 5, true, 1, 10), capitest.OK)
	wantCode(t, "free", capitest.Free(h), capitest.OK)
	_, err = capitest.Open(d2, capitest.Options{Window: &capitest.Window{T0: 0, T1: 50}}, capitest.StoreOptions{})
	wantCode(t, "other window", err, capitest.Store)
}

// TestDurableGoroutinesStopOnFree: the store's goroutines and the background
// GC run only between open and free.
func TestDurableGoroutinesStopOnFree(t *testing.T) {
	base := runtime.NumGoroutine()
	h := openDurable(t, t.TempDir(), capitest.Options{TTLSeconds: 10}, capitest.StoreOptions{})
	opened := runtime.NumGoroutine()
	wantCode(t, "start_gc", capitest.StartGC(h, 1), capitest.OK)
	wantCode(t, "start_gc twice", capitest.StartGC(h, 1), capitest.State)
	if n := runtime.NumGoroutine(); n < opened+1 {
		t.Errorf("%d goroutines with gc running, %d before it", n, opened)
	}
	wantCode(t, "free", capitest.Free(h), capitest.OK)
	// Close waits for all three; an exited goroutine may take a moment to
	// leave the count.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("%d goroutines after free, want %d", n, base)
	}
	h = openDurable(t, t.TempDir(), capitest.Options{}, capitest.StoreOptions{})
	wantCode(t, "start_gc without ttl", capitest.StartGC(h, 1), capitest.State)
	wantCode(t, "free", capitest.Free(h), capitest.OK)
}
