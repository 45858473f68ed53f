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
	"github.com/poh-holdmetrics/poh-holdmetrics/server/store"
)

// aggregator is what an aggregator handle names: a core.Aggregator and, for
// one opened with poh_aggregator_open, the durable store in front of it
// (the daemon's server/store: the same log, snapshots and lock).
//
// Reads go to the embedded aggregator. The write methods below shadow the
// embedded ones on purpose, so that every export that records, closes a
// hold or collects garbage goes through the store when there is one: the
// store applies the write and appends its record under one mutex and
// returns once the record is durable under its fsync policy. A write the
// exports acknowledge (POH_OK) is therefore in the log.
type aggregator struct {
	*core.Aggregator
	st  *store.Store // nil: in memory
	ttl time.Duration
}

func (a *aggregator) RecordAt(now int64, events []core.HoldEvent, partial bool) (int, error) {
	if a.st == nil {
		return a.Aggregator.RecordAt(now, events, partial)
	}
	return a.st.Record(now, events, partial)
}

func (a *aggregator) CloseHoldAt(now int64, token, holder string, at int64) (int, error) {
	if a.st == nil {
		return a.Aggregator.CloseHoldAt(now, token, holder, at)
	}
	return a.st.CloseHold(now, token, holder, at)
}

func (a *aggregator) GC(now int64) (int, error) {
	if a.st == nil {
		return a.Aggregator.GC(now)
	}
	if err := core.ValidateTime(-1, "now", now); err != nil {
		return 0, err // the store would log a GC record with a bad time
	}
	return a.st.GC(now)
}

// StartGC starts the one goroutine the caller asked for (core's loop; StopGC
// and Close stop it). A durable aggregator collects through the store, so
// that every GC is logged before it drops holders.
func (a *aggregator) StartGC(interval time.Duration) error {
	if a.st == nil {
		return a.Aggregator.StartGC(interval)
	}
	if a.ttl == 0 {
		return errors.New("background gc needs a ttl > 0")
	}
	return a.Aggregator.StartGCWith(interval, func(now int64) { _, _ = a.GC(now) })
}

// Close stops the background GC, then closes the store (it refuses new
// writes, flushes and syncs the log, writes a snapshot if the log grew,
// stops its goroutines and releases the lock), then the aggregator.
func (a *aggregator) Close() error {
	if a.st == nil {
		return a.Aggregator.Close()
	}
	a.StopGC()
	err := a.st.Close()
	if cerr := a.Aggregator.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return storeError(a.st.Dir(), "close", err)
	}
	return nil
}

// storeError gives a store failure its status: POH_ERR_LOCKED for a data
// dir another store holds, POH_ERR_STORE for the rest. The message names
// the data dir.
func storeError(dir, op string, err error) error {
	if errors.Is(err, store.ErrLocked) {
		return &statusError{statusLocked, fmt.Sprintf("%s store %s: data dir is locked: another store holds it "+
			"(another process, or another open aggregator in this one); close that one first", op, dir)}
	}
	return &statusError{statusStore, fmt.Sprintf("%s store %s: %v", op, dir, err)}
}

// warnLogger reports what recovery found wrong (a torn or corrupt log tail
// cut off, a failed store) on stderr, as the daemon's log would; nothing
// below a warning.
func warnLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

//export poh_aggregator_open
func poh_aggregator_open(path *C.char, pathLen C.int64_t, opts *C.poh_aggregator_options,
	sopts *C.poh_store_options, out *C.poh_handle, e *C.poh_error) (rc C.int) {
	defer recoverInto(e, &rc)
	if out == nil {
		return fail(e, argError("out pointer is NULL"))
	}
	dir, err := cString(path, pathLen, "path")
	switch {
	case err != nil:
		return fail(e, err)
	case dir == "":
		return fail(e, argError("path is empty"))
	}
	dir = string([]byte(dir)) // the store keeps it: copy it out of caller memory
	co, err := coreOptions(opts)
	if err != nil {
		return fail(e, err)
	}
	var so C.poh_store_options
	if sopts != nil {
		so = *sopts
	}
	o := store.Options{Logger: warnLogger(), SnapshotBytes: int64(so.snapshot_bytes)}
	switch so.fsync {
	case C.POH_FSYNC_INTERVAL:
		o.Fsync = store.FsyncInterval
	case C.POH_FSYNC_ALWAYS:
		o.Fsync = store.FsyncAlways
	case C.POH_FSYNC_NONE:
		o.Fsync = store.FsyncNone
	default:
		return fail(e, argError("fsync policy %d: want POH_FSYNC_INTERVAL, POH_FSYNC_ALWAYS or POH_FSYNC_NONE",
			int(so.fsync)))
	}
	if ms := int64(so.fsync_interval_ms); ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
		return fail(e, argError("fsync_interval_ms %d is out of range", ms))
	} else {
		o.FsyncInterval = time.Duration(ms) * time.Millisecond // 0: the store's default
	}
	a, err := core.New(co)
	if err != nil {
		return fail(e, err)
	}
	st, _, err := store.Open(dir, a, o)
	if err != nil {
		_ = a.Close()
		return fail(e, storeError(dir, "open", err))
	}
	*out = C.poh_handle(newHandle(&aggregator{Aggregator: a, st: st, ttl: co.TTL}))
	return statusOK
}
