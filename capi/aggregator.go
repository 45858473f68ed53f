package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/poh-holdmetrics/poh-holdmetrics/core"
	"github.com/poh-holdmetrics/poh-holdmetrics/store"
)

// aggregator is what an aggregator handle names: a core.Aggregator and the
// one core.Writer every write goes through: the durable store (the daemon's
// store/: the same log, snapshots and lock) when it was created with a path,
// else core.Memory. A write the exports acknowledge (POH_OK) has been
// applied and, for a durable aggregator, is in the log under its fsync
// policy. Reads go to the aggregator.
type aggregator struct {
	agg *core.Aggregator
	w   core.Writer
	dir string // the data dir ("" in memory), for error messages
}

// record is every record export's write: through the writer, acknowledged.
func (a *aggregator) record(now int64, events []core.HoldEvent, o core.RecordOptions) (int, error) {
	n, err := core.RecordAndWait(a.w, now, events, o)
	return n, a.storeError("write", err)
}

// close stops the background GC, then closes the writer (a store refuses new
// writes, flushes and syncs the log, writes a snapshot if the log grew, stops
// its goroutines and releases the lock), then the aggregator.
func (a *aggregator) close() error {
	a.agg.StopGC()
	err := a.w.Close()
	if cerr := a.agg.Close(); err == nil {
		err = cerr
	}
	return a.storeError("close", err)
}

// storeError gives a store failure its status: POH_ERR_LOCKED for a data
// dir another store holds, POH_ERR_STORE for the rest. The message names
// the data dir. Other errors pass through.
func (a *aggregator) storeError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrLocked):
		return &statusError{statusLocked, fmt.Sprintf("%s store %s: data dir is locked: another store holds it "+
			"(another process, or another open aggregator in this one); close that one first", op, a.dir)}
	case errors.Is(err, store.ErrFailed) || (op != "write" && a.dir != ""):
		return &statusError{statusStore, fmt.Sprintf("%s store %s: %v", op, a.dir, err)}
	}
	return err
}

// warnLogger reports what recovery found wrong (a torn or corrupt log tail
// cut off, a failed store) on stderr, as the daemon's log would; nothing
// below a warning.
func warnLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newAggregator creates the aggregator and its writer that *opts describes.
func newAggregator(opts *C.poh_aggregator_options) (*aggregator, error) {
	o, err := readSized(opts, "poh_aggregator_options")
	if err != nil {
		return nil, err
	}
	if err := checkFlags("poh_aggregator_options", o.flags,
		C.POH_AGGREGATOR_WINDOW|C.POH_AGGREGATOR_HISTORY|C.POH_AGGREGATOR_EXACT); err != nil {
		return nil, err
	}
	switch {
	case o.ttl_seconds < 0 || int64(o.ttl_seconds) > math.MaxInt64/int64(time.Second):
		return nil, argError("ttl %d seconds is out of range", int64(o.ttl_seconds))
	case o.shards > 1<<16:
		return nil, argError("shards %d is more than 65536", int64(o.shards))
	case o.reserved != 0:
		return nil, argError("poh_aggregator_options.reserved is %d, want 0", int32(o.reserved))
	}
	co := core.Options{TTL: time.Duration(o.ttl_seconds) * time.Second, Shards: int(o.shards),
		History: o.flags&C.POH_AGGREGATOR_HISTORY != 0, Exact: o.flags&C.POH_AGGREGATOR_EXACT != 0}
	if o.flags&C.POH_AGGREGATOR_WINDOW != 0 {
		w := window(o.window)
		if err := w.Validate(); err != nil { // the bare validation error (core.New wraps it)
			return nil, err
		}
		co.Window = w
	}
	dir, err := cString(o.path, o.path_len, "path")
	if err != nil {
		return nil, err
	}
	so, err := storeOptions(&o, dir != "")
	if err != nil {
		return nil, err
	}
	agg, err := core.New(co)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return &aggregator{agg: agg, w: core.Memory(agg)}, nil
	}
	a := &aggregator{agg: agg, dir: string([]byte(dir))} // the store keeps it: copy it out of caller memory
	st, _, err := store.Open(a.dir, agg, so)
	if err != nil {
		_ = agg.Close()
		return nil, a.storeError("open", err)
	}
	a.w = st
	return a, nil
}

// storeOptions checks the store fields of o; set without a path, they are an
// error (they would be silently ignored).
func storeOptions(o *C.poh_aggregator_options, durable bool) (store.Options, error) {
	if !durable {
		if o.fsync != 0 || o.fsync_interval_ms != 0 || o.snapshot_bytes != 0 {
			return store.Options{}, argError("fsync, fsync_interval_ms and snapshot_bytes need a path " +
				"(a durable aggregator); an in-memory one has no store")
		}
		return store.Options{}, nil
	}
	so := store.Options{Logger: warnLogger(), SnapshotBytes: int64(o.snapshot_bytes)}
	switch o.fsync {
	case C.POH_FSYNC_INTERVAL:
		so.Fsync = store.FsyncInterval
	case C.POH_FSYNC_ALWAYS:
		so.Fsync = store.FsyncAlways
	case C.POH_FSYNC_NONE:
		so.Fsync = store.FsyncNone
	default:
		return so, argError("fsync policy %d: want POH_FSYNC_INTERVAL, POH_FSYNC_ALWAYS or POH_FSYNC_NONE",
			int(o.fsync))
	}
	ms := int64(o.fsync_interval_ms)
	if ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		return so, argError("fsync_interval_ms %d is out of range", ms)
	}
	so.FsyncInterval = time.Duration(ms) * time.Millisecond // 0: the store's default
	return so, nil
}
