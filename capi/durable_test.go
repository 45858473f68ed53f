package main

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/capi/capitest"
)

// openDurable is poh_aggregator_new with o.Path = dir.
func openDurable(t *testing.T, dir string, o capitest.Options) uint64 {
	t.Helper()
	o.Path = dir
	h, err := capitest.New(o)
	wantCode(t, "open "+dir, err, capitest.OK)
	if h == 0 {
		t.Fatal("open: zero handle")
	}
	return h
}

// waitGoroutines waits (up to 5 s) for the goroutine count to drop to at
// most want: an exited goroutine may take a moment to leave the count.
func waitGoroutines(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	return runtime.NumGoroutine()
}

// TestDurableReopenRebuildsExactly: every write path of a durable aggregator
// (poh_record_event, poh_record strict and partial, poh_close_hold, poh_gc)
// reaches the log, and a reopen rebuilds the same rows, updated_at and
// history included, under each fsync policy; with snapshot_bytes tiny, from a
// snapshot plus the log.
func TestDurableReopenRebuildsExactly(t *testing.T) {
	leakCheck(t)
	for _, c := range []struct {
		name string
		o    capitest.Options
	}{
		{"always", capitest.Options{Fsync: capitest.FsyncAlways}},
		{"interval", capitest.Options{Fsync: capitest.FsyncInterval, FsyncIntervalMS: 1}},
		{"none+snapshots", capitest.Options{Fsync: capitest.FsyncNone, SnapshotBytes: 64}},
	} {
		t.Run(c.name, func(t *testing.T) {
			leakCheck(t)
			dir := filepath.Join(t.TempDir(), "data")
			o := c.o
			o.TTLSeconds, o.History = 100, true
			h := openDurable(t, dir, o)
			wantCode(t, "record_event", capitest.RecordEvent(h, "POH", "alice", 10, 0, false, 2, 20), capitest.OK)
			record(t, h, capitest.Cols{
				Start: []int64{1, 5, 7, 60}, End: []int64{4, 9, 8, 500}, HasEnd: []uint8{1, 1, 1, 1},
				Weight: []float64{1, 1, 0.5, 3}, Tokens: []string{"POH", "LP", "POH", "LP"},
				Holders: []string{"bob", "alice", "idle", "dave"},
			}, 30)
			res, err := capitest.Record(h, capitest.Cols{
				Start: []int64{40, 50}, End: []int64{30, 60}, HasEnd: []uint8{1, 1}, Weight: []float64{1, 1},
				Tokens: []string{"POH", "POH"}, Holders: []string{"bad", "carol"},
			}, 60, true)
			wantCode(t, "record partial", err, capitest.OK)
			if res.Accepted != 1 || res.Rejected != 1 || len(res.Errors) != 1 || res.Errors[0].Index != 0 {
				t.Fatalf("record partial: %+v", res)
			}
			if n, err := capitest.CloseHold(h, "POH", "alice", 70, 70); n != 1 || err.Code != capitest.OK {
				t.Fatalf("close_hold: %d, %+v", n, err)
			}
			// TTL 100 at 150: "bob" and "idle" (updated at 30) go; alice (70),
			// carol (60) and dave (holding until 500) stay.
			if n, err := capitest.GC(h, 150); n != 2 || err.Code != capitest.OK {
				t.Fatalf("gc: %d, %+v", n, err)
			}
			win := &capitest.Window{T0: 0, T1: 1000}
			var before, beforeWin [][]capitest.Stat
			for _, now := range []int64{150, 300, 1000} {
				before = append(before, rows(t, h, now))
				rs, err := capitest.Rows(h, capitest.Q{Now: now, Window: win})
				wantCode(t, "window query", err, capitest.OK)
				beforeWin = append(beforeWin, rs)
			}
			if len(before[2]) != 3 {
				t.Fatalf("rows before reopen: %+v", before[2])
			}
			wantCode(t, "free", capitest.Free(h), capitest.OK)

			h = openDurable(t, dir, o)
			defer capitest.Free(h)
			for i, now := range []int64{150, 300, 1000} {
				if after := rows(t, h, now); !slices.Equal(after, before[i]) {
					t.Errorf("now %d: reopened %+v, want %+v", now, after, before[i])
				}
				// History came back too: a window query answers the same.
				rs, err := capitest.Rows(h, capitest.Q{Now: now, Window: win})
				wantCode(t, "window query after reopen", err, capitest.OK)
				if !slices.Equal(rs, beforeWin[i]) {
					t.Errorf("now %d: reopened window rows %+v, want %+v", now, rs, beforeWin[i])
				}
			}
			if n, _ := capitest.Holders(h); n != 3 {
				t.Errorf("reopened: %d holders, want 3", n)
			}
		})
	}
}

// TestDurableLocked: one open store per data dir, in this process as in any
// other; the message names the dir; after poh_free the dir opens again.
func TestDurableLocked(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	h := openDurable(t, dir, capitest.Options{})
	h2, err := capitest.New(capitest.Options{Path: dir})
	wantCode(t, "second open", err, capitest.Locked)
	if h2 != 0 {
		t.Fatal("a handle for a locked dir")
	}
	if !strings.Contains(err.Message, dir) || !strings.Contains(err.Message, "locked") {
		t.Errorf("locked message %q does not name %s", err.Message, dir)
	}
	wantCode(t, "free", capitest.Free(h), capitest.OK)
	h = openDurable(t, dir, capitest.Options{})
	wantCode(t, "free again", capitest.Free(h), capitest.OK)
}

func TestDurableOpenErrors(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	s := filepath.Join(dir, "s")
	for _, c := range []struct {
		name string
		o    capitest.Options
		code int
	}{
		{"fsync 7", capitest.Options{Path: s, Fsync: 7}, capitest.InvalidArgument},
		{"fsync -1", capitest.Options{Path: s, Fsync: -1}, capitest.InvalidArgument},
		{"interval -1", capitest.Options{Path: s, FsyncIntervalMS: -1}, capitest.InvalidArgument},
		{"ttl -1", capitest.Options{Path: s, TTLSeconds: -1}, capitest.InvalidArgument},
		{"shards 65537", capitest.Options{Path: s, Shards: 1<<16 + 1}, capitest.InvalidArgument},
		{"bad window", capitest.Options{Path: s, Window: &capitest.Window{T0: 5, T1: 1}}, capitest.InvalidEvent},
		// Store settings without a path would be silently ignored: refused.
		{"fsync without path", capitest.Options{Fsync: capitest.FsyncAlways}, capitest.InvalidArgument},
		{"interval without path", capitest.Options{FsyncIntervalMS: 5}, capitest.InvalidArgument},
		{"snapshot_bytes without path", capitest.Options{SnapshotBytes: 64}, capitest.InvalidArgument},
	} {
		h, err := capitest.New(c.o)
		wantCode(t, c.name, err, c.code)
		if h != 0 {
			capitest.Free(h)
			t.Fatalf("%s: a handle", c.name)
		}
	}
	// None of those left the store open: it opens now.
	h := openDurable(t, s, capitest.Options{})
	wantCode(t, "free", capitest.Free(h), capitest.OK)

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := capitest.New(capitest.Options{Path: file})
	wantCode(t, "a file as data dir", err, capitest.Store)
	if !strings.Contains(err.Message, file) {
		t.Errorf("message %q does not name %s", err.Message, file)
	}
	// Settings that do not match the stored state are refused, not mixed.
	d2 := filepath.Join(dir, "d2")
	h = openDurable(t, d2, capitest.Options{Window: &capitest.Window{T0: 0, T1: 100}})
	wantCode(t, "record", capitest.RecordEvent(h, "T", "a", 1, 5, true, 1, 10), capitest.OK)
	wantCode(t, "free", capitest.Free(h), capitest.OK)
	_, err = capitest.New(capitest.Options{Path: d2, Window: &capitest.Window{T0: 0, T1: 50}})
	wantCode(t, "other window", err, capitest.Store)
	_, err = capitest.New(capitest.Options{Path: d2, Window: &capitest.Window{T0: 0, T1: 100}, History: true})
	wantCode(t, "history on a dir written without", err, capitest.Store)
	if !strings.Contains(err.Message, d2) {
		t.Errorf("message %q does not name %s", err.Message, d2)
	}
	h = openDurable(t, d2, capitest.Options{Window: &capitest.Window{T0: 0, T1: 100}})
	wantCode(t, "free", capitest.Free(h), capitest.OK)
}

// TestDurableGoroutinesStopOnFree: the store's goroutines and the background
// GC run only between open and free (or poh_gc_schedule(h, 0)).
func TestDurableGoroutinesStopOnFree(t *testing.T) {
	leakCheck(t)
	base := runtime.NumGoroutine()
	h := openDurable(t, t.TempDir(), capitest.Options{TTLSeconds: 10})
	opened := runtime.NumGoroutine()
	wantCode(t, "gc_schedule", capitest.GCSchedule(h, 1), capitest.OK)
	wantCode(t, "gc_schedule twice", capitest.GCSchedule(h, 1), capitest.State)
	if n := runtime.NumGoroutine(); n < opened+1 {
		t.Errorf("%d goroutines with gc running, %d before it", n, opened)
	}
	wantCode(t, "gc_schedule 0", capitest.GCSchedule(h, 0), capitest.OK)
	if n := waitGoroutines(opened); n > opened {
		t.Errorf("%d goroutines after stopping gc, want %d", n, opened)
	}
	wantCode(t, "gc_schedule again", capitest.GCSchedule(h, 1), capitest.OK)
	wantCode(t, "free", capitest.Free(h), capitest.OK)
	// Free waits for all three.
	if n := waitGoroutines(base); n > base {
		t.Errorf("%d goroutines after free, want %d", n, base)
	}
	h = openDurable(t, t.TempDir(), capitest.Options{})
	wantCode(t, "gc_schedule without ttl", capitest.GCSchedule(h, 1), capitest.State)
	wantCode(t, "free", capitest.Free(h), capitest.OK)
	if n := waitGoroutines(base); n > base {
		t.Errorf("%d goroutines after the second free, want %d", n, base)
	}
}
