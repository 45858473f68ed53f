// Command capi is the C API of poh-holdmetrics, built with
// -buildmode=c-shared into libpoh_holdmetrics.so. It is a thin, handle-based
// adapter over package core; poh_holdmetrics.h (hand-written) is its contract.
//
// Rules every export follows: handles are checked integers from the table in
// handles.go (never Go pointers, never cgo.Handle.Value on unchecked input),
// looked up by one helper per handle kind; a deferred recoverInto turns any
// panic into POH_ERR_INTERNAL; errors are a status code plus a poh_error the
// caller owns (errors.go); option and result structs are read and written
// through their size field (structs.go); no pointer to caller memory is kept
// after a call returns, and none to Go memory is handed out.
//
// An aggregator handle holds a core.Aggregator and its one core.Writer
// (aggregator.go): writes go through the writer, reads to the aggregator,
// whether the writer is the durable store or memory.
//
// Nothing here starts a goroutine, a listener or a signal handler the caller
// did not ask for: poh_gc_schedule starts one goroutine, and a durable
// poh_aggregator_new the store's two (log flusher, snapshotter), each on
// request and each stopped by poh_free.
package main

/*
#include "poh_holdmetrics.h"
*/
import "C"

func main() {}
